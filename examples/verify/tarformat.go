package main

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// A tar-format backup (pg_basebackup -Ft) is a directory of archives:
// base.tar with the data directory, <oid>.tar for each tablespace (its
// contents, which the manifest lists under pg_tblspc/<oid>/), pg_wal.tar
// with the WAL (pg_basebackup -X stream), each optionally compressed
// (.tar.gz or .tgz, .tar.lz4, .tar.zst), and backup_manifest. verifyTar
// joins them into one backup stream as the library writes it (the
// tablespaces under pg_tblspc/<oid>/, the WAL under pg_wal/) and checks
// that with manifest.VerifyStream: every file is read once, from its
// archive, and nothing is extracted but the WAL, which VerifyStream
// spools to a temporary directory for its check.

// alwaysIgnored are the paths pg_verifybackup ignores at the top of a
// backup (the manifest, WAL checked separately, what -R writes).
var alwaysIgnored = []string{"backup_manifest", "pg_wal", "postgresql.auto.conf", "recovery.signal", "standby.signal"}

// tarSuffixes are the archive names' endings pg_verifybackup accepts.
var tarSuffixes = []string{".tar", ".tgz", ".tar.gz", ".tar.lz4", ".tar.zst"}

type tarArchive struct {
	name string // file name in the backup directory
	oid  uint64 // tablespace OID, 0 for base and pg_wal
	// dotted holds the members named "./x" in the archive (tar -cf
	// a.tar .) that a problem will be reported about (not in the
	// manifest, or of another size), by their path in the backup:
	// pg_verifybackup's messages name such a member as the archive does.
	dotted map[string]bool
	size   int64
}

// verifyTar checks a tar-format backup directory against m.
func (c *config) verifyTar(ctx context.Context, m *manifest.Manifest) int {
	entries, err := os.ReadDir(c.target)
	if err != nil {
		c.log.Errorf("could not open directory \"%s\": %s", c.target, strerror(err))
		return 1
	}
	var base, walTar *tarArchive
	var spcs []tarArchive
	var prelim []string
	ignore := append(append([]string(nil), alwaysIgnored...), c.ignore...)
	for _, e := range entries {
		name := e.Name()
		if ignored(name, ignore) {
			continue
		}
		fi, err := os.Stat(filepath.Join(c.target, name))
		if err != nil {
			prelim = append(prelim, fmt.Sprintf("could not stat file or directory \"%s\": %s", name, strerror(err)))
			continue
		}
		if !fi.Mode().IsRegular() {
			prelim = append(prelim, fmt.Sprintf("file \"%s\" is not a regular file", name))
			continue
		}
		a := tarArchive{name: name, size: fi.Size()}
		var suffix string
		switch {
		case strings.HasPrefix(name, "base"):
			suffix = name[4:]
		case strings.HasPrefix(name, "pg_wal"):
			suffix = name[6:]
		default:
			digits := len(name) - len(strings.TrimLeft(name, "0123456789"))
			oid, err := strconv.ParseUint(name[:digits], 10, 32)
			if err != nil || oid == 0 {
				prelim = append(prelim, fmt.Sprintf("file \"%s\" is not expected in a tar format backup", name))
				continue
			}
			a.oid, suffix = oid, name[digits:]
		}
		if !contains(tarSuffixes, suffix) {
			prelim = append(prelim, fmt.Sprintf("file \"%s\" is not expected in a tar format backup", name))
			continue
		}
		switch {
		case a.oid != 0:
			spcs = append(spcs, a)
		case strings.HasPrefix(name, "base"):
			base = &a
		default:
			walTar = &a
		}
	}
	for _, msg := range prelim {
		c.log.Errorf("%s", msg)
		if c.exitOnError {
			return 1
		}
	}

	p := &progressReader{c: c}
	// As pg_verifybackup's, the progress counts base.tar and the
	// tablespaces' archives, not the WAL.
	for _, a := range append(spcs, nonNil(base)...) {
		p.total += a.size
	}
	if c.progress {
		c.progressLine(0, p.total, false)
	}
	pr, pw := io.Pipe()
	merged := make(chan error, 1)
	go func() {
		err := c.mergeTars(ctx, pw, m, base, spcs, walTar, p)
		pw.CloseWithError(err)
		merged <- err
	}()
	err = manifest.VerifyStream(ctx, pr, manifest.StreamOptions{
		Manifest:      m,
		WALDir:        c.walPath,
		SkipWAL:       c.noParseWAL,
		SkipChecksums: c.skipChecksums,
		Ignore:        c.ignore,
	})
	pr.CloseWithError(io.ErrClosedPipe)
	if merr := <-merged; merr != nil && merr != io.ErrClosedPipe { //nolint:errorlint // our own sentinel, unwrapped
		c.log.Errorf("%s", merr)
		return 1
	}
	p.finish()
	baseArchive := tarArchive{name: "base.tar"}
	if base != nil {
		baseArchive = *base
	}
	return c.finish(err, m, func(p string) (string, string) {
		a, member := baseArchive, p
		if rest, ok := strings.CutPrefix(p, "pg_tblspc/"); ok {
			oid, inSpc, _ := strings.Cut(rest, "/")
			for _, s := range spcs {
				if strconv.FormatUint(s.oid, 10) == oid {
					a, member = s, inSpc
				}
			}
		}
		if a.dotted[p] {
			member = "./" + member
		}
		return a.name, member
	}, len(prelim) > 0)
}

// mergeTars writes the archives as one tar stream to w.
func (c *config) mergeTars(ctx context.Context, w io.Writer, m *manifest.Manifest, base *tarArchive, spcs []tarArchive, walTar *tarArchive, p *progressReader) error {
	tw := tar.NewWriter(w)
	if base != nil {
		err := c.copyArchive(ctx, tw, base, m, p, func(h *tar.Header) bool {
			if path.Dir(h.Name) == "pg_tblspc" && h.Typeflag == tar.TypeSymlink {
				return false // the tablespace's contents come from <oid>.tar
			}
			// With -w the WAL is taken from there only.
			return c.walPath == "" || !strings.HasPrefix(h.Name, "pg_wal/")
		})
		if err != nil {
			return err
		}
	}
	for i := range spcs {
		s := &spcs[i]
		dir := "pg_tblspc/" + strconv.FormatUint(s.oid, 10) + "/"
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o700, ModTime: time.Now()}); err != nil {
			return err
		}
		err := c.copyArchive(ctx, tw, s, m, p, func(h *tar.Header) bool {
			h.Name = dir + h.Name
			return true
		})
		if err != nil {
			return err
		}
	}
	if walTar != nil && c.walPath == "" && !c.noParseWAL {
		uncounted := &progressReader{c: &config{}}
		err := c.copyArchive(ctx, tw, walTar, m, uncounted, func(h *tar.Header) bool {
			h.Name = "pg_wal/" + h.Name
			return h.Typeflag == tar.TypeReg
		})
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// copyArchive copies the members of one archive of the backup directory
// that keep accepts (and may rename) to tw. The archive must be whole
// (end-of-archive marker, compressed end).
func (c *config) copyArchive(ctx context.Context, tw *tar.Writer, a *tarArchive, m *manifest.Manifest, p *progressReader, keep func(*tar.Header) bool) error {
	name := a.name
	f, err := os.Open(filepath.Join(c.target, name))
	if err != nil {
		return fmt.Errorf("could not open file \"%s\": %s", name, strerror(err))
	}
	defer f.Close()
	tr, err := tarstream.NewReader(ctx, countingReader{r: f, p: p})
	if err != nil {
		return fmt.Errorf("could not read file \"%s\": %w", name, err)
	}
	defer tr.Close()
	for {
		h, err := tr.Next()
		if err == io.EOF { //nolint:errorlint // io.EOF is returned unwrapped by contract
			return nil
		}
		if err != nil {
			return fmt.Errorf("could not read file \"%s\": %w", name, err)
		}
		rest, dotted := strings.CutPrefix(h.Name, "./")
		if h.Name = rest; h.Name == "" || h.Name == "." {
			continue // the archive's own top directory ("tar -cf x.tar .")
		}
		if !keep(h) {
			continue
		}
		if dotted && h.Typeflag == tar.TypeReg {
			if i := m.Lookup(h.Name); i < 0 || m.Files[i].Size != h.Size {
				if a.dotted == nil {
					a.dotted = map[string]bool{}
				}
				a.dotted[h.Name] = true
			}
		}
		h.Format, h.PAXRecords = tar.FormatUnknown, nil
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			if err == io.ErrClosedPipe { //nolint:errorlint // io.Pipe's sentinel, unwrapped
				return err
			}
			return fmt.Errorf("could not read file \"%s\": %w", name, err)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func nonNil(as ...*tarArchive) []tarArchive {
	var out []tarArchive
	for _, a := range as {
		if a != nil {
			out = append(out, *a)
		}
	}
	return out
}
