// Command manifestrss measures the peak memory of verifying a backup with
// a very large manifest: ours (examples/verify) against pg_verifybackup
// on the same directory, both with WAL parsing off (-n), since the
// question is the manifest. It builds a directory of N empty files in
// 1,000 subdirectories and a version 1 manifest listing them (CRC32C),
// runs both tools under /usr/bin/time -v and prints their maximum
// resident set sizes and the ratio. A benchmark, never a test.
//
//	go run ./bench/manifestrss -files 1000000
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
)

func main() {
	files := flag.Int("files", 1000000, "files in the manifest")
	ref := flag.String("pg-verifybackup", "/usr/lib/postgresql/15/bin/pg_verifybackup", "reference tool")
	keep := flag.Bool("keep", false, "keep the directory")
	flag.Parse()
	dir, err := os.MkdirTemp("", "manifestrss-")
	if err != nil {
		log.Fatal(err)
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	m := &manifest.Manifest{Version: 1, WALRanges: []manifest.WALRange{{Timeline: 1, StartLSN: 0x2000028, EndLSN: 0x2000100}}}
	crcEmpty := []byte{0, 0, 0, 0}
	for i := range *files {
		sub := fmt.Sprintf("base/%d", 16384+i%1000)
		if i < 1000 {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
				log.Fatal(err)
			}
		}
		p := fmt.Sprintf("%s/%d", sub, 100000+i)
		if err := os.WriteFile(filepath.Join(dir, p), nil, 0o600); err != nil {
			log.Fatal(err)
		}
		m.Files = append(m.Files, manifest.File{Path: p, LastModified: "2026-11-26 10:00:00 GMT", ChecksumAlgorithm: "CRC32C", Checksum: crcEmpty})
	}
	b, err := m.Marshal()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "backup_manifest"), b, 0o600); err != nil {
		log.Fatal(err)
	}
	m, b = nil, nil
	fmt.Printf("%d files, manifest %.1f MB\n", *files, float64(fileSize(filepath.Join(dir, "backup_manifest")))/1e6)
	ours := filepath.Join(os.TempDir(), fmt.Sprintf("manifestrss-verify-%d", os.Getpid()))
	defer os.Remove(ours)
	if out, err := exec.Command("go", "build", "-o", ours, "./examples/verify").CombinedOutput(); err != nil {
		log.Fatalf("build: %v %s", err, out)
	}
	rssOurs, tOurs := peak(ours, "-n", dir)
	rssRef, tRef := peak(*ref, "-n", dir)
	fmt.Printf("%-16s %10s %10s\n", "tool", "peak RSS", "wall")
	fmt.Printf("%-16s %8.0f MB %10v\n", "ours", rssOurs, tOurs.Round(time.Millisecond))
	fmt.Printf("%-16s %8.0f MB %10v\n", "pg_verifybackup", rssRef, tRef.Round(time.Millisecond))
	fmt.Printf("ratio ours/pg_verifybackup: RSS %.2f, wall %.2f\n", rssOurs/rssRef, tOurs.Seconds()/tRef.Seconds())
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

var maxRSS = regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`)

// peak runs a command under /usr/bin/time -v; it must succeed.
func peak(args ...string) (float64, time.Duration) {
	cmd := exec.Command("/usr/bin/time", append([]string{"-v"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		log.Fatalf("%v: %v\n%s", args, err, tail(out.Bytes()))
	}
	mm := maxRSS.FindSubmatch(out.Bytes())
	if mm == nil {
		log.Fatalf("no RSS in %s", tail(out.Bytes()))
	}
	kb, _ := strconv.ParseFloat(string(mm[1]), 64)
	return kb / 1024, took
}

func tail(b []byte) []byte {
	if len(b) > 2000 {
		return b[len(b)-2000:]
	}
	return b
}
