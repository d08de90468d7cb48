package incremental

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/pgstreambackup/pgstreambackup/internal/spooldir"
	"github.com/pgstreambackup/pgstreambackup/label"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// input is one backup to combine, as a directory.
type input struct {
	dir    string
	name   string // as the caller gave it
	stream bool
	// origTS: for a stream input, the tablespaces' locations in its
	// tablespace_map before extraction moved them to the scratch area.
	origTS map[uint32]string
}

// inputDirs returns a directory per input: directories as they are,
// stream files extracted into one private subdirectory of scratch
// ("pgstreambackup-combine-*", one per Combine, so that concurrent
// Combines may share scratch), that cleanup removes with everything in
// it (the inputs' tablespaces too).
func inputDirs(ctx context.Context, inputs []string, output, scratch string) ([]input, func(), error) {
	private := ""
	cleanup := func() {
		if private != "" {
			_ = os.RemoveAll(private)
		}
	}
	option := "CombineOptions.ScratchDir"
	if scratch == "" {
		scratch = filepath.Dir(filepath.Clean(output))
		option = "the output directory's parent (CombineOptions.ScratchDir is empty)"
	}
	dirs := make([]input, len(inputs))
	for i, in := range inputs {
		fi, err := os.Stat(in)
		if err != nil {
			return nil, cleanup, fmt.Errorf("incremental: %w", err)
		}
		if fi.IsDir() {
			dirs[i] = input{dir: in, name: in}
			continue
		}
		if private == "" {
			if private, err = spooldir.Create(option, scratch, "pgstreambackup-combine-"); err != nil {
				return nil, cleanup, fmt.Errorf("incremental: scratch directory for %s: %w", in, err)
			}
		}
		d := filepath.Join(private, fmt.Sprint("input-", i))
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, cleanup, fmt.Errorf("incremental: scratch directory for %s: %w", in, err)
		}
		ts, err := streamTablespaces(in)
		if err != nil {
			return nil, cleanup, err
		}
		// Into the scratch area by OID: a tablespace_map that Extract
		// reads differently from streamTablespaces (another location,
		// another OID) is refused, never followed outside.
		mapping := map[string]string{}
		for oid := range ts {
			mapping[fmt.Sprint(oid)] = filepath.Join(d, fmt.Sprint("tablespace-", oid))
		}
		f, err := os.Open(in)
		if err != nil {
			return nil, cleanup, fmt.Errorf("incremental: %w", err)
		}
		_, err = tarstream.Extract(ctx, f, filepath.Join(d, "backup"), tarstream.ExtractOptions{TablespaceMapping: mapping, Tablespaces: ts})
		_ = f.Close()
		if err != nil {
			return nil, cleanup, fmt.Errorf("incremental: extracting %s: %w", in, err)
		}
		dirs[i] = input{dir: filepath.Join(d, "backup"), name: in, stream: true, origTS: ts}
	}
	return dirs, cleanup, nil
}

// streamTablespaces reads the tablespace_map of a backup stream file: the
// second member of the data directory, which follows the tablespaces'
// contents (one extra pass over those).
func streamTablespaces(file string) (map[uint32]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("incremental: %w", err)
	}
	defer func() { _ = f.Close() }()
	r, _, err := tarstream.NewDecompressingReader(f)
	if err != nil {
		return nil, fmt.Errorf("incremental: %s: %w", file, err)
	}
	defer func() { _ = r.Close() }()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, nil // no tablespace_map: no tablespaces
		}
		if err != nil {
			return nil, fmt.Errorf("incremental: %s: reading its first members: %w", file, err)
		}
		if path.Clean(h.Name) != "tablespace_map" {
			continue
		}
		raw, err := io.ReadAll(io.LimitReader(tr, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("incremental: %s: %w", file, err)
		}
		m, err := label.ParseTablespaceMap(raw, 17) // incremental backups: 17+
		if err != nil {
			return nil, fmt.Errorf("incremental: %s: tablespace_map: %w", file, err)
		}
		out := map[uint32]string{}
		for _, e := range m {
			out[e.OID] = e.Path
		}
		return out, nil
	}
}
