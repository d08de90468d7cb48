package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
)

// verify runs the verification the command line asks for and returns
// the exit status.
func (c *config) verify(ctx context.Context) int {
	fi, statErr := os.Stat(c.target)
	if statErr == nil && fi.Mode().IsRegular() && c.format != 'p' {
		return c.verifyStreamFile(ctx)
	}
	// As pg_verifybackup: the manifest first, then the directory.
	mpath := c.manifestPath
	if mpath == "" {
		mpath = c.target + "/backup_manifest"
	}
	m, ok := c.parseManifest(mpath)
	if !ok {
		return 1
	}
	if statErr == nil && !fi.IsDir() {
		statErr = syscall.ENOTDIR
	}
	if statErr == nil {
		var d *os.File
		if d, statErr = os.Open(c.target); statErr == nil {
			d.Close()
		}
	}
	if statErr != nil {
		c.log.Errorf("could not open directory \"%s\": %s", c.target, strerror(statErr))
		return 1
	}
	if c.format == 0 {
		c.format = 'p'
		if _, err := os.Stat(filepath.Join(c.target, "PG_VERSION")); errors.Is(err, fs.ErrNotExist) {
			c.format = 't'
		} else if err != nil {
			c.log.Errorf("could not stat file \"%s\": %s", c.target+"/PG_VERSION", strerror(err))
			return 1
		}
	}
	if c.format == 't' {
		return c.verifyTar(ctx, m)
	}
	return c.verifyPlain(ctx, m)
}

// parseManifest reads the manifest, reporting a failure as
// pg_verifybackup does (every manifest problem is fatal).
func (c *config) parseManifest(path string) (*manifest.Manifest, bool) {
	m, err := manifest.ParseFile(path)
	if err == nil {
		return m, true
	}
	var pe *fs.PathError
	switch {
	case errors.Is(err, manifest.ErrSyntax):
		msg := err.Error()
		if i := strings.Index(msg, manifest.ErrSyntax.Error()+": "); i >= 0 {
			msg = msg[i+len(manifest.ErrSyntax.Error())+2:]
		}
		c.log.Errorf("%s", syntaxWording(msg))
	case errors.As(err, &pe) && pe.Op == "open":
		c.log.Errorf("could not open file \"%s\": %s", path, strerror(err))
	default:
		c.log.Errorf("could not read file \"%s\": %s", path, strerror(err))
	}
	return nil, false
}

// manifestWhere is the location our parser puts before a problem (a
// file's index or path, a WAL range's index, a field), which
// pg_verifybackup does not say.
var manifestWhere = regexp.MustCompile(`^(file \d+|WAL range \d+|Files|WAL-Ranges|"(?:[^"\\]|\\.)*"): `)

// syntaxWording words a manifest parse problem (the text after
// ErrSyntax's) as pg_verifybackup does where the two parsers agree on
// what is wrong; otherwise our text, after the same prefix.
func syntaxWording(msg string) string {
	msg = manifestWhere.ReplaceAllString(msg, "")
	switch {
	case strings.HasPrefix(msg, "manifest checksum mismatch"),
		strings.HasPrefix(msg, "invalid manifest checksum: "),
		strings.HasPrefix(msg, "invalid checksum for file "),
		strings.HasPrefix(msg, "duplicate path name in backup manifest"):
		return msg // fatal errors of their own, not parse failures
	case strings.HasPrefix(msg, "unrecognized checksum algorithm "):
		return "unrecognized checksum algorithm: " + strings.TrimPrefix(msg, "unrecognized checksum algorithm ")
	case msg == "EOF" || msg == "unexpected EOF":
		msg = "The input string ended unexpectedly."
	}
	for ours, theirs := range map[string]string{
		"missing Start-LSN":         "missing start LSN",
		"missing End-LSN":           "missing end LSN",
		"could not parse Start-LSN": "could not parse start LSN",
		"could not parse End-LSN":   "could not parse end LSN",
	} {
		if strings.HasPrefix(msg, ours) {
			msg = theirs + msg[len(ours):]
		}
	}
	return "could not parse backup manifest: " + msg
}

// verifyPlain checks a plain-format backup directory.
func (c *config) verifyPlain(ctx context.Context, m *manifest.Manifest) int {
	var total int64
	if c.progress && !c.skipChecksums {
		for _, f := range m.Files {
			if f.ChecksumAlgorithm != "" && !ignored(f.Path, c.ignore) {
				total += f.Size
			}
		}
		c.progressLine(0, total, false)
	}
	err := manifest.VerifyDir(ctx, c.target, m, manifest.VerifyOptions{
		SkipChecksums: c.skipChecksums,
		SkipWAL:       c.noParseWAL,
		Ignore:        c.ignore,
		WALDir:        c.walPath,
	})
	if c.progress && !c.skipChecksums {
		c.progressLine(total, total, true)
	}
	return c.finish(err, m, nil, false)
}

// verifyStreamFile checks a backup stream file (our extension): against
// -m's manifest, or the stream's own.
func (c *config) verifyStreamFile(ctx context.Context) int {
	var m *manifest.Manifest
	if c.manifestPath != "" {
		var ok bool
		if m, ok = c.parseManifest(c.manifestPath); !ok {
			return 1
		}
	}
	f, err := os.Open(c.target)
	if err != nil {
		c.log.Errorf("could not open file \"%s\": %s", c.target, strerror(err))
		return 1
	}
	defer f.Close()
	var total int64
	if fi, err := f.Stat(); err == nil {
		total = fi.Size()
	}
	p := &progressReader{c: c, total: total}
	err = manifest.VerifyStream(ctx, &seekCounter{f: f, p: p}, manifest.StreamOptions{
		Manifest:      m,
		WALDir:        c.walPath,
		SkipWAL:       c.noParseWAL,
		SkipChecksums: c.skipChecksums,
		Ignore:        c.ignore,
	})
	p.finish()
	name := filepath.Base(c.target)
	return c.finish(err, m, func(path string) (string, string) { return name, path }, false)
}

// finish reports the verification's outcome and returns the exit status.
// archive maps a backup path to the archive and member name it came from
// (nil for a plain directory); failed says problems were already
// reported.
func (c *config) finish(err error, m *manifest.Manifest, archive func(string) (string, string), failed bool) int {
	var ve *manifest.VerifyError
	if err != nil && !errors.As(err, &ve) {
		c.log.Errorf("%s", err)
		return 1
	}
	if ve != nil && c.report(ve, m, archive) || failed {
		return 1
	}
	if !c.quiet {
		fmt.Fprintln(c.stdout, "backup successfully verified")
	}
	return 0
}

// ignored reports whether rel is, or is below, one of the paths in list
// (pg_verifybackup's should_ignore_relpath).
func ignored(rel string, list []string) bool {
	for _, ig := range list {
		if rel == ig || strings.HasPrefix(rel, ig+"/") {
			return true
		}
	}
	return false
}

// strerror is the system's text for err's errno, capitalised as the C
// library writes it ("No such file or directory"), or err's text.
func strerror(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		s := errno.Error()
		if s != "" {
			return strings.ToUpper(s[:1]) + s[1:]
		}
	}
	return err.Error()
}
