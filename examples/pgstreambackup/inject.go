package main

import (
	"archive/tar"
	"io"
	"time"
)

// injectRecovery copies the data directory's tar r to w the way
// pg_basebackup -Ft -R rewrites base.tar: text is appended to
// postgresql.auto.conf (a new one holds it when there was none), a
// standby.signal in the archive is dropped and an empty one added at the
// end, both with mode (the source's file mode).
func injectRecovery(w io.Writer, r io.Reader, text string, mode int64) error {
	tr, tw := tar.NewReader(r), tar.NewWriter(w)
	found := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch {
		case h.Name == "standby.signal":
			continue
		case h.Name == "postgresql.auto.conf" && h.Typeflag == tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			data = append(data, text...)
			h.Size = int64(len(data))
			if err := writeMember(tw, h, data); err != nil {
				return err
			}
			found = true
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	now := time.Now()
	if !found {
		h := &tar.Header{Name: "postgresql.auto.conf", Mode: mode, Size: int64(len(text)), ModTime: now, Typeflag: tar.TypeReg}
		if err := writeMember(tw, h, []byte(text)); err != nil {
			return err
		}
	}
	h := &tar.Header{Name: "standby.signal", Mode: mode, ModTime: now, Typeflag: tar.TypeReg}
	if err := writeMember(tw, h, nil); err != nil {
		return err
	}
	return tw.Close()
}

func writeMember(tw *tar.Writer, h *tar.Header, data []byte) error {
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}
