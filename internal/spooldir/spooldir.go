// Package spooldir makes the private working directories the library
// keeps its temporary files in (spooled WAL, a large manifest, extracted
// combine inputs), inside a directory the caller names or os.TempDir().
//
// The rule: the caller's directory may be shared by any number of
// concurrent backups (of any clusters) and by other programs. The library
// never writes a file directly in it and never removes anything of it:
// each backup makes its own subdirectory with os.MkdirTemp (a fresh,
// unpredictable name, mode 0700), creates its files there with O_EXCL,
// and removes that subdirectory, and only it, when it is done, whether
// it succeeded, failed or was cancelled.
package spooldir

import (
	"fmt"
	"os"
)

// Check reports, without creating anything, whether dir can hold private
// subdirectories: it must exist and be a directory. option names the
// setting in errors ("Options.WALSpoolDir"); an empty dir means
// os.TempDir(), which is then checked and named with $TMPDIR.
func Check(option, dir string) error {
	what := option + " " + fmt.Sprintf("%q", dir)
	if dir == "" {
		dir = os.TempDir()
		what = fmt.Sprintf("the temporary directory %q (%s is empty, so os.TempDir(), i.e. $TMPDIR, is used)", dir, option)
	}
	fi, err := os.Stat(dir)
	switch {
	case os.IsNotExist(err):
		return fmt.Errorf("%s does not exist (it is not created: create it first)", what)
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", what)
	}
	return nil
}

// Create makes a new private subdirectory of dir (os.TempDir() when
// empty) named prefix followed by random characters, after Check. The
// caller removes it with os.RemoveAll.
func Create(option, dir, prefix string) (string, error) {
	if err := Check(option, dir); err != nil {
		return "", err
	}
	d, err := os.MkdirTemp(dir, prefix)
	if err != nil {
		return "", fmt.Errorf("creating a private directory in %s: %w", option, err)
	}
	return d, nil
}

// CreateFile creates a new file in a private directory: O_EXCL, so an
// existing file (which cannot be there unless something else writes in
// our directory) is an error rather than truncated and shared.
func CreateFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
}
