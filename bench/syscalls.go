package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// ioCalls is what one run of a program did in data-moving system calls,
// counted by strace in a separate run (strace slows the program, so
// these runs are never timed). /proc/<pid>/io would be cheaper but counts
// neither recv(2), which libpq reads its socket with, nor splice(2).
type ioCalls struct {
	reads, writes         int64 // calls, failed ones (EAGAIN) included
	readBytes, writeBytes int64
}

// traced lists the system calls counted: every way either tool reads or
// writes data.
var traced = map[string]bool{
	"read": true, "readv": true, "pread64": true, "recvfrom": true, "recvmsg": true,
	"write": true, "writev": true, "pwrite64": true, "sendto": true, "sendmsg": true,
	"splice": true, "sendfile": true, "copy_file_range": true, "tee": true, "vmsplice": true,
}

// isRead tells the reading calls from the writing ones; splice-class
// calls move data in and out at once and count as writes.
func isRead(name string) bool {
	switch name {
	case "read", "readv", "pread64", "recvfrom", "recvmsg":
		return true
	}
	return false
}

// countIO runs prog under strace -f and sums its I/O calls and the bytes
// they moved.
func countIO(base, prog string, args []string, file bool, env []string) (ioCalls, error) {
	log, err := os.CreateTemp(base, "strace-")
	if err != nil {
		return ioCalls{}, err
	}
	log.Close()
	defer os.Remove(log.Name())
	names := make([]string, 0, len(traced))
	for n := range traced {
		names = append(names, n)
	}
	sargs := append([]string{"-f", "-qq", "-s", "0", "-e", "signal=none", "-e", "trace=" + strings.Join(names, ","), "-o", log.Name(), prog}, args...)
	if _, err := measure(base, "strace", sargs, file, env); err != nil {
		return ioCalls{}, err
	}
	return parseStrace(log.Name())
}

// parseStrace reads strace's lines ("PID name(args) = N" or the
// "<... name resumed> ...) = N" second half of an interrupted call).
func parseStrace(path string) (ioCalls, error) {
	f, err := os.Open(path)
	if err != nil {
		return ioCalls{}, err
	}
	defer f.Close()
	var c ioCalls
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasSuffix(line, "<unfinished ...>") {
			continue // counted when it resumes
		}
		_, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimLeft(rest, " ")
		if r, ok := strings.CutPrefix(rest, "<... "); ok {
			rest = r
		}
		name, _, ok := strings.Cut(rest, "(")
		if !ok {
			name, _, _ = strings.Cut(rest, " ")
		}
		if !traced[name] {
			continue
		}
		i := strings.LastIndex(line, "= ")
		if i < 0 {
			continue
		}
		ret, _, _ := strings.Cut(line[i+2:], " ")
		n, err := strconv.ParseInt(ret, 10, 64)
		if err != nil || n < 0 {
			n = 0
		}
		if isRead(name) {
			c.reads++
			c.readBytes += n
		} else {
			c.writes++
			c.writeBytes += n
		}
	}
	return c, sc.Err()
}

// perCall formats bytes per call, "-" without calls.
func perCall(bytes, calls int64) string {
	if calls == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(bytes)/float64(calls))
}

// haveStrace tells whether strace can be run.
func haveStrace() bool {
	_, err := exec.LookPath("strace")
	return err == nil
}
