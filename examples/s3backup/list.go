package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/minio/minio-go/v7"
)

// listing is one backup directory in the store: complete when its
// backup.json exists.
type listing struct {
	ID     string
	Record *record // nil: incomplete (no record)
	// Uploads are the multipart uploads still open under the backup: one
	// running, or one whose abort did not reach the server in time.
	Uploads []minio.ObjectMultipartInfo
}

// listBackups returns the backups under the store's prefix, oldest first.
// A backup without record (a failed or running one) is listed with a nil
// Record, never as restorable; so is one that has only an open multipart
// upload (S3 lists no object for it).
func listBackups(ctx context.Context, st *store) ([]listing, error) {
	prefix := st.prefix
	if prefix != "" {
		prefix += "/"
	}
	byID := map[string]*listing{}
	for obj := range st.core.Client.ListObjects(ctx, st.bucket, minio.ListObjectsOptions{Prefix: prefix}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("listing %s: %w", st.bucket, obj.Err)
		}
		id := strings.TrimSuffix(strings.TrimPrefix(obj.Key, prefix), "/")
		if id == "" || strings.Contains(id, "/") {
			continue
		}
		byID[id] = &listing{ID: id}
	}
	for up := range st.core.Client.ListIncompleteUploads(ctx, st.bucket, prefix, true) {
		if up.Err != nil {
			return nil, fmt.Errorf("listing the multipart uploads of %s: %w", st.bucket, up.Err)
		}
		id, _, ok := strings.Cut(strings.TrimPrefix(up.Key, prefix), "/")
		if !ok || id == "" {
			continue
		}
		if byID[id] == nil {
			byID[id] = &listing{ID: id}
		}
		byID[id].Uploads = append(byID[id].Uploads, up)
	}
	out := make([]listing, 0, len(byID))
	for id, l := range byID {
		rec, err := readRecord(ctx, st, id)
		if err != nil {
			return nil, err
		}
		l.Record = rec
		out = append(out, *l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// readRecord returns a backup's record, nil when it has none.
func readRecord(ctx context.Context, st *store, id string) (*record, error) {
	key := st.key(id, "backup.json")
	obj, err := st.core.Client.GetObject(ctx, st.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	defer obj.Close()
	raw, err := io.ReadAll(io.LimitReader(obj, 16<<20))
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, nil
		}
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return &rec, nil
}
