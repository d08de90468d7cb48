package tarstream

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

type tsFixture struct {
	oid uint32
	loc string // original location, as in tablespace_map
}

type streamOpts struct {
	major       int    // server major; 15 if 0
	algorithm   string // manifest checksum algorithm; "" for none
	mapFirst    bool   // tablespace_map before the tablespaces' files
	noMap       bool   // no tablespace_map at all
	noManifest  bool
	forceEncode bool // Encoded-Path for every manifest entry
	inPlace     []uint32
}

func (o streamOpts) catDir() string {
	return fmt.Sprintf("PG_%d_202209061", o.major)
}

// escapeMap writes a tablespace_map the way the server does.
func escapeMap(tss []tsFixture, major int) string {
	var b strings.Builder
	for _, ts := range tss {
		fmt.Fprintf(&b, "%d ", ts.oid)
		for _, c := range []byte(ts.loc) {
			if c == '\n' || c == '\r' || (major >= 14 && c == '\\') {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// backupStream builds a single stream like basebackup.Backup's: each
// tablespace under pg_tblspc/<oid>/ first, then backup_label,
// tablespace_map, the data directory, pg_control, and backup_manifest last
// in the server's exact format.
func backupStream(t testing.TB, tss []tsFixture, o streamOpts) []byte {
	t.Helper()
	if o.major == 0 {
		o.major = 15
	}
	var tsEntries, mapEntries []entry
	var files []entry // regular files, in stream order, for the manifest
	add := func(dst *[]entry, e entry) {
		*dst = append(*dst, e)
		if e.typ == file("", "").typ {
			files = append(files, e)
		}
	}
	all := append(slices.Clone(tss), func() []tsFixture {
		var in []tsFixture
		for _, oid := range o.inPlace {
			in = append(in, tsFixture{oid: oid})
		}
		return in
	}()...)
	for _, ts := range all {
		p := fmt.Sprintf("pg_tblspc/%d/", ts.oid)
		add(&tsEntries, dir(p))
		add(&tsEntries, dir(p+o.catDir()+"/"))
		add(&tsEntries, dir(p+o.catDir()+"/5/"))
		add(&tsEntries, file(p+o.catDir()+"/5/16389", fmt.Sprintf("relation data of %d", ts.oid)))
		add(&tsEntries, file(p+o.catDir()+"/5/16389_fsm", strings.Repeat("f", 600)))
	}
	if !o.noMap {
		add(&mapEntries, file("tablespace_map", escapeMap(tss, o.major)))
	}
	var entries []entry
	var rest []entry
	add(&rest, file("backup_label", "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"))
	if o.mapFirst {
		entries = append(entries, rest...)
		entries = append(entries, mapEntries...)
		entries = append(entries, tsEntries...)
	} else {
		entries = append(entries, tsEntries...)
		entries = append(entries, rest...)
		entries = append(entries, mapEntries...)
	}
	for _, e := range []entry{
		file("PG_VERSION", fmt.Sprintf("%d\n", o.major)), dir("base/"), dir("base/1/"), file("base/1/1259", strings.Repeat("p", 8192)),
		dir("pg_tblspc/"), dir("pg_wal/"), dir("./pg_wal/archive_status/"), dir("global/"), file("global/pg_control", "control"),
	} {
		add(&entries, e)
	}
	if !o.noManifest {
		entries = append(entries, file("backup_manifest", serverManifest(t, files, o)))
	}
	return build(t, entries, true)
}

// serverManifest writes a manifest byte for byte like the server
// (PROTOCOL.md 4.2), with the files in stream order.
func serverManifest(t testing.TB, files []entry, o streamOpts) string {
	t.Helper()
	var b strings.Builder
	version := 1
	if o.major >= 17 {
		version = 2
	}
	fmt.Fprintf(&b, "{ \"PostgreSQL-Backup-Manifest-Version\": %d,\n", version)
	if version == 2 {
		b.WriteString("\"System-Identifier\": 7711786569878479245,\n")
	}
	b.WriteString("\"Files\": [\n")
	for i, f := range files {
		if o.forceEncode {
			fmt.Fprintf(&b, "{ \"Encoded-Path\": \"%s\", ", hex.EncodeToString([]byte(f.name)))
		} else {
			fmt.Fprintf(&b, "{ \"Path\": %s, ", jsonString(f.name))
		}
		fmt.Fprintf(&b, "\"Size\": %d, \"Last-Modified\": \"2026-11-24 17:10:31 GMT\"", len(f.body))
		if o.algorithm != "" {
			sum, err := fileChecksum(o.algorithm, []byte(f.body), false)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, ", \"Checksum-Algorithm\": \"%s\", \"Checksum\": \"%s\"", o.algorithm, sum)
		}
		b.WriteString(" }")
		if i < len(files)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("],\n\"WAL-Ranges\": [\n{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }\n],\n")
	sum := sha256.Sum256([]byte(b.String()))
	b.WriteString("\"Manifest-Checksum\": \"" + hex.EncodeToString(sum[:]) + "\"}\n")
	return b.String()
}

// verifyBackup checks dir like pg_verifybackup -n, independently of the
// code under test: the manifest checksum; every manifest entry present
// with its size and checksum (reading through the pg_tblspc links);
// every regular file on disk listed (backup_manifest and pg_wal aside).
// When PostgreSQL's pg_verifybackup is installed it is run as well.
func verifyBackup(t *testing.T, dir string) {
	t.Helper()
	m, err := os.ReadFile(filepath.Join(dir, "backup_manifest"))
	if err != nil {
		t.Fatal(err)
	}
	pen := bytes.LastIndexByte(m[:len(m)-1], '\n')
	sum := sha256.Sum256(m[:pen+1])
	if want := "\"Manifest-Checksum\": \"" + hex.EncodeToString(sum[:]) + "\"}\n"; string(m[pen+1:]) != want {
		t.Fatalf("manifest checksum mismatch:\n%s", m)
	}
	var doc struct {
		Files []struct {
			Path        string `json:"Path"`
			EncodedPath string `json:"Encoded-Path"`
			Size        int
			Algorithm   string `json:"Checksum-Algorithm"`
			Checksum    string
		}
	}
	if err := json.Unmarshal(m, &doc); err != nil {
		t.Fatalf("manifest is not JSON: %v\n%s", err, m)
	}
	listed := map[string]bool{}
	for _, f := range doc.Files {
		name := f.Path
		if f.EncodedPath != "" {
			b, _ := hex.DecodeString(f.EncodedPath)
			name = string(b)
		}
		listed[name] = true
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%q is present in the manifest but not on disk: %v", name, err)
			continue
		}
		if len(b) != f.Size {
			t.Errorf("%q has size %d on disk but size %d in the manifest", name, len(b), f.Size)
		}
		if f.Algorithm != "" {
			if want, _ := fileChecksum(f.Algorithm, b, false); want != f.Checksum {
				t.Errorf("checksum mismatch for file %q", name)
			}
		}
	}
	var walk func(rel string)
	walk = func(rel string) {
		entries, err := os.ReadDir(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			p := filepath.ToSlash(filepath.Join(rel, e.Name()))
			fi, err := os.Stat(filepath.Join(dir, p)) // follows the tablespace links
			switch {
			case err != nil:
				t.Errorf("%q: %v", p, err)
			case p == "pg_wal" || p == "backup_manifest":
			case fi.IsDir():
				walk(p)
			case !listed[p]:
				t.Errorf("%q is present on disk but not in the manifest", p)
			}
		}
	}
	walk(".")
	v1 := bytes.HasPrefix(m, []byte(`{ "PostgreSQL-Backup-Manifest-Version": 1,`))
	if _, err := os.Stat("/usr/lib/postgresql/15/bin/pg_verifybackup"); err == nil && v1 {
		out, err := exec.Command("/usr/lib/postgresql/15/bin/pg_verifybackup", "-n", dir).CombinedOutput()
		if err != nil {
			t.Errorf("pg_verifybackup: %v\n%s", err, out)
		}
	}
}

// sourceTablespace makes a live, non-empty "source" tablespace directory.
func sourceTablespace(t *testing.T, root, name string) string {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Join(p, "PG_15_202209061"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "PG_15_202209061", "live"), []byte("source"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func assertSourceUntouched(t *testing.T, p string) {
	t.Helper()
	e, _ := os.ReadDir(p)
	b, _ := os.ReadFile(filepath.Join(p, "PG_15_202209061", "live"))
	if len(e) != 1 || string(b) != "source" {
		t.Errorf("source tablespace %s touched: %v", p, e)
	}
	if e, _ := os.ReadDir(filepath.Join(p, "PG_15_202209061")); len(e) != 1 {
		t.Errorf("source tablespace %s touched: %v", p, e)
	}
}

func assertTablespace(t *testing.T, target string, oid uint32, loc string, o streamOpts) {
	t.Helper()
	if o.major == 0 {
		o.major = 15
	}
	link := filepath.Join(target, "pg_tblspc", fmt.Sprint(oid))
	if got, err := os.Readlink(link); err != nil || got != loc {
		t.Errorf("pg_tblspc/%d -> %q (%v), want %q", oid, got, err, loc)
	}
	b, err := os.ReadFile(filepath.Join(loc, o.catDir(), "5", "16389"))
	if want := fmt.Sprintf("relation data of %d", oid); err != nil || string(b) != want {
		t.Errorf("tablespace %d file = %q, %v", oid, b, err)
	}
	if fi, err := os.Stat(loc); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("tablespace %d location: %v %v", oid, fi, err)
	}
	if fi, err := os.Stat(filepath.Join(loc, o.catDir())); err != nil || !fi.ModTime().Equal(testMTime) {
		t.Errorf("tablespace %d: version dir %v %v", oid, fi, err)
	}
}

func TestExtractTablespaceRelocation(t *testing.T) {
	for _, alg := range []string{"CRC32C", "SHA224", "SHA256", "SHA384", "SHA512", ""} {
		for _, mode := range []string{"staged", "known", "map first", "mixed"} {
			t.Run(fmt.Sprintf("%s/%s", alg, mode), func(t *testing.T) {
				root := t.TempDir()
				orig1 := sourceTablespace(t, root, "source ts é")
				orig2 := sourceTablespace(t, root, "source\\ts 2") // a backslash: escaped on 14+
				new1 := filepath.Join(root, "new ts ü", "deeper")
				new2 := filepath.Join(root, "nouveau répertoire")
				target := filepath.Join(root, "restore")
				so := streamOpts{algorithm: alg, mapFirst: mode == "map first"}
				tss := []tsFixture{{16384, orig1}, {16390, orig2}}
				opts := ExtractOptions{TablespaceMapping: map[string]string{orig1 + "/": new1, orig2: new2 + "/"}, Fsync: true}
				switch mode {
				case "known":
					opts.Tablespaces = map[uint32]string{16384: orig1, 16390: orig2}
				case "mixed":
					opts.Tablespaces = map[uint32]string{16390: orig2}
				}
				res, err := extract(t, backupStream(t, tss, so), target, opts)
				if err != nil {
					t.Fatal(err)
				}
				assertTablespace(t, target, 16384, new1, so)
				assertTablespace(t, target, 16390, new2, so)
				b, _ := os.ReadFile(filepath.Join(target, "tablespace_map"))
				if want := escapeMap([]tsFixture{{16384, new1}, {16390, new2}}, 15); string(b) != want {
					t.Errorf("tablespace_map = %q, want %q", b, want)
				}
				assertSourceUntouched(t, orig1)
				assertSourceUntouched(t, orig2)
				want := []ExtractedTablespace{{16384, orig1, new1, false}, {16390, orig2, new2, false}}
				if !slices.Equal(res.Tablespaces, want) || !res.RewroteManifest || !res.RewroteTablespaceMap || res.RemovedTablespaceMap {
					t.Errorf("result %+v", res)
				}
				verifyBackup(t, target)
			})
		}
	}
}

// TestExtractTablespaceUnmapped: a tablespace the caller did not map is
// refused by default, whatever the order of the stream; with
// AllowArchiveLocations it goes to its original location, which must be
// empty, or absent under an existing parent.
func TestExtractTablespaceUnmapped(t *testing.T) {
	t.Run("refused by default", func(t *testing.T) {
		for _, mode := range []string{"staged", "known", "map first"} {
			root := t.TempDir()
			orig := filepath.Join(root, "ts")
			target := filepath.Join(root, "restore")
			opts := ExtractOptions{}
			if mode == "known" {
				opts.Tablespaces = map[uint32]string{16384: orig}
			}
			_, err := extract(t, backupStream(t, []tsFixture{{16384, orig}}, streamOpts{algorithm: "CRC32C", mapFirst: mode == "map first"}), target, opts)
			if !errors.Is(err, ErrUnmappedTablespace) || !strings.Contains(err.Error(), fmt.Sprintf("16384 at %q", orig)) || !strings.Contains(err.Error(), "-T OLDDIR=NEWDIR") {
				t.Fatalf("%s: err = %v", mode, err)
			}
			if e, _ := os.ReadDir(root); len(e) != 0 {
				t.Errorf("%s: left behind: %v", mode, e)
			}
		}
	})
	t.Run("original location in use", func(t *testing.T) {
		for _, known := range []bool{false, true} {
			root := t.TempDir()
			orig := sourceTablespace(t, root, "source")
			target := filepath.Join(root, "restore")
			opts := ExtractOptions{AllowArchiveLocations: true}
			if known {
				opts.Tablespaces = map[uint32]string{16384: orig}
			}
			_, err := extract(t, backupStream(t, []tsFixture{{16384, orig}}, streamOpts{algorithm: "CRC32C"}), target, opts)
			if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), fmt.Sprintf("tablespace 16384: directory %q exists but is not empty", orig)) {
				t.Fatalf("known=%v: restoring onto the live source tablespace = %v", known, err)
			}
			assertSourceUntouched(t, orig)
			if _, err := os.Stat(target); !errors.Is(err, fs.ErrNotExist) {
				t.Error("target left behind")
			}
		}
	})
	t.Run("original location absent", func(t *testing.T) {
		root := t.TempDir()
		orig := filepath.Join(root, "ts")
		target := filepath.Join(root, "restore")
		res, err := extract(t, backupStream(t, []tsFixture{{16384, orig}}, streamOpts{algorithm: "CRC32C"}), target, ExtractOptions{AllowArchiveLocations: true})
		if err != nil {
			t.Fatal(err)
		}
		assertTablespace(t, target, 16384, orig, streamOpts{})
		if res.RewroteTablespaceMap || res.RewroteManifest {
			t.Errorf("nothing moved, yet %+v", res)
		}
		verifyBackup(t, target)
	})
	t.Run("original location's parent absent", func(t *testing.T) {
		for _, known := range []bool{false, true} {
			root := t.TempDir()
			orig := filepath.Join(root, "gone", "ts")
			opts := ExtractOptions{AllowArchiveLocations: true}
			if known {
				opts.Tablespaces = map[uint32]string{16384: orig}
			}
			_, err := extract(t, backupStream(t, []tsFixture{{16384, orig}}, streamOpts{algorithm: "CRC32C"}), filepath.Join(root, "restore"), opts)
			if err == nil || !strings.Contains(err.Error(), "creates no parents") {
				t.Fatalf("known=%v: err = %v", known, err)
			}
			if e, _ := os.ReadDir(root); len(e) != 0 {
				t.Errorf("known=%v: left behind: %v", known, e)
			}
		}
	})
	t.Run("original location empty", func(t *testing.T) {
		root := t.TempDir()
		orig := filepath.Join(root, "mnt")
		os.Mkdir(orig, 0o755)
		target := filepath.Join(root, "restore")
		if _, err := extract(t, backupStream(t, []tsFixture{{16384, orig}}, streamOpts{}), target, ExtractOptions{AllowArchiveLocations: true}); err != nil {
			t.Fatal(err)
		}
		assertTablespace(t, target, 16384, orig, streamOpts{})
	})
}

// fakeHome makes a home directory with an empty .ssh, and returns a
// function listing everything below it.
func fakeHome(t *testing.T, root string) (string, func() []string) {
	t.Helper()
	home := filepath.Join(root, "home", "victim")
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	return home, func() []string {
		var found []string
		filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
			if err == nil && p != home {
				found = append(found, p)
			}
			return nil
		})
		return found
	}
}

// TestExtractHostileTablespaceMap: an archive (a file, a bucket object)
// whose tablespace_map names directories outside the target — a home's
// existing empty .ssh, a missing .config/autostart — can make Extract
// write nothing there, in any member order, even when the same locations
// are passed as ExtractOptions.Tablespaces (e.g. from the bucket's own
// metadata): without a mapping or AllowArchiveLocations it is refused,
// and the target is removed.
func TestExtractHostileTablespaceMap(t *testing.T) {
	for _, mode := range []string{"staged", "known", "map first", "zstd"} {
		t.Run(mode, func(t *testing.T) {
			root := t.TempDir()
			home, list := fakeHome(t, root)
			ssh, autostart := filepath.Join(home, ".ssh"), filepath.Join(home, ".config", "autostart")
			entries := []entry{dir("pg_tblspc/16384/"), file("pg_tblspc/16384/authorized_keys", "ssh-ed25519 AAAA attacker\n"),
				dir("pg_tblspc/16390/"), file("pg_tblspc/16390/evil.desktop", "[Desktop Entry]\nExec=sh -c evil\n")}
			m := file("tablespace_map", escapeMap([]tsFixture{{16384, ssh}, {16390, autostart}}, 15))
			if mode == "map first" {
				entries = append([]entry{m}, entries...)
			} else {
				entries = append(entries, m)
			}
			entries = append(entries, file("PG_VERSION", "15\n"))
			stream := build(t, entries, true)
			opts := ExtractOptions{}
			switch mode {
			case "known":
				opts.Tablespaces = map[uint32]string{16384: ssh, 16390: autostart}
			case "zstd":
				stream = compress(t, Zstd, stream)
			}
			target := filepath.Join(root, "restore")
			_, err := extract(t, stream, target, opts)
			if !errors.Is(err, ErrUnmappedTablespace) {
				t.Fatalf("err = %v, want ErrUnmappedTablespace", err)
			}
			for _, want := range []string{fmt.Sprintf("16384 at %q", ssh), fmt.Sprintf("16390 at %q", autostart)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not list %s", err, want)
				}
			}
			if got := list(); !slices.Equal(got, []string{ssh}) {
				t.Errorf("the fake home holds %v, want only the empty %s", got, ssh)
			}
			if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("target left behind: %v", err)
			}
		})
	}
}

// TestExtractHeaderMapDisagree: the server's header (Tablespaces) and
// tablespace_map name different locations: refused, whether the caller
// mapped the header's location (its files went there, and are removed)
// or the map's (never used), and in either member order.
func TestExtractHeaderMapDisagree(t *testing.T) {
	for _, mode := range []string{"staged", "map first"} {
		for _, mapped := range []string{"header", "map"} {
			t.Run(mode+"/"+mapped, func(t *testing.T) {
				root := t.TempDir()
				home, list := fakeHome(t, root)
				header := filepath.Join(root, "server", "ts")
				inMap := filepath.Join(home, ".ssh")
				newLoc := filepath.Join(root, "new")
				opts := ExtractOptions{Tablespaces: map[uint32]string{16384: header}, TablespaceMapping: map[string]string{header: newLoc}}
				if mapped == "map" {
					opts.TablespaceMapping = map[string]string{inMap: newLoc}
				}
				stream := backupStream(t, []tsFixture{{16384, inMap}}, streamOpts{algorithm: "CRC32C", mapFirst: mode == "map first"})
				_, err := extract(t, stream, filepath.Join(root, "restore"), opts)
				switch {
				case mapped == "header" && (err == nil || !strings.Contains(err.Error(), fmt.Sprintf("says %q, tablespace_map says %q", header, inMap))):
					t.Fatalf("err = %v", err)
				case mapped == "map" && !errors.Is(err, ErrUnmappedTablespace):
					t.Fatalf("err = %v (the header's location is not mapped: refused up front)", err)
				}
				if got := list(); !slices.Equal(got, []string{inMap}) {
					t.Errorf("the fake home holds %v", got)
				}
				if e, _ := os.ReadDir(root); len(e) != 1 || e[0].Name() != "home" {
					t.Errorf("left behind: %v", e)
				}
			})
		}
	}
}

// TestExtractTablespaceMappingByOID: TablespaceMapping keys may be OIDs
// (a backup whose original locations are unknown to the caller), alone or
// beside an agreeing location entry; disagreeing entries are refused.
func TestExtractTablespaceMappingByOID(t *testing.T) {
	for _, mode := range []string{"staged", "known", "map first"} {
		t.Run(mode, func(t *testing.T) {
			root := t.TempDir()
			orig1, orig2 := filepath.Join(root, "src1"), filepath.Join(root, "src2")
			new1, new2 := filepath.Join(root, "n", "ts1"), filepath.Join(root, "ts2")
			target := filepath.Join(root, "restore")
			so := streamOpts{algorithm: "SHA256", mapFirst: mode == "map first"}
			opts := ExtractOptions{TablespaceMapping: map[string]string{"16384": new1, "16390": new2, orig2: new2}}
			if mode == "known" {
				opts.Tablespaces = map[uint32]string{16384: orig1, 16390: orig2}
			}
			res, err := extract(t, backupStream(t, []tsFixture{{16384, orig1}, {16390, orig2}}, so), target, opts)
			if err != nil {
				t.Fatal(err)
			}
			assertTablespace(t, target, 16384, new1, so)
			assertTablespace(t, target, 16390, new2, so)
			b, _ := os.ReadFile(filepath.Join(target, "tablespace_map"))
			if want := escapeMap([]tsFixture{{16384, new1}, {16390, new2}}, 15); string(b) != want {
				t.Errorf("tablespace_map = %q, want %q", b, want)
			}
			if !res.RewroteManifest {
				t.Errorf("result %+v", res)
			}
			verifyBackup(t, target)
		})
	}
	t.Run("OID and location disagree", func(t *testing.T) {
		root := t.TempDir()
		orig := filepath.Join(root, "src")
		opts := ExtractOptions{TablespaceMapping: map[string]string{"16384": filepath.Join(root, "a"), orig: filepath.Join(root, "b")}}
		_, err := extract(t, backupStream(t, []tsFixture{{16384, orig}}, streamOpts{}), filepath.Join(root, "restore"), opts)
		if err == nil || !strings.Contains(err.Error(), "disagree") {
			t.Fatalf("err = %v", err)
		}
		if e, _ := os.ReadDir(root); len(e) != 0 {
			t.Errorf("left behind: %v", e)
		}
	})
	for _, bad := range []string{"016384", "+16384", "0", "x"} {
		if _, err := extract(t, nil, filepath.Join(t.TempDir(), "r"), ExtractOptions{TablespaceMapping: map[string]string{bad: "/x"}}); err == nil || !strings.Contains(err.Error(), "neither an absolute path nor a tablespace OID") {
			t.Errorf("key %q: err = %v", bad, err)
		}
	}
}

// TestExtractAnnouncedNotEmpty: with the locations known up front (the
// server's header), a non-empty one fails before anything is written,
// even before the stream is read.
func TestExtractAnnouncedNotEmpty(t *testing.T) {
	root := t.TempDir()
	busy := sourceTablespace(t, root, "busy")
	free := filepath.Join(root, "free")
	opts := ExtractOptions{Tablespaces: map[uint32]string{16384: filepath.Join(root, "elsewhere"), 16390: busy}, TablespaceMapping: map[string]string{"16384": free}, AllowArchiveLocations: true}
	_, err := Extract(context.Background(), iotest.ErrReader(errors.New("the stream was read")), filepath.Join(root, "restore"), opts)
	if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), fmt.Sprintf("tablespace 16390: directory %q exists but is not empty", busy)) {
		t.Fatalf("err = %v", err)
	}
	if e, _ := os.ReadDir(root); len(e) != 1 {
		t.Errorf("written: %v", e)
	}
	assertSourceUntouched(t, busy)
}

// TestExtractTablespaceCleanup: a failure after the tablespaces were
// placed removes them (and the parents Extract created), and empties a
// location that existed empty without removing it.
func TestExtractTablespaceCleanup(t *testing.T) {
	for _, mode := range []string{"staged", "known"} {
		t.Run(mode, func(t *testing.T) {
			root := t.TempDir()
			orig1, orig2 := filepath.Join(root, "src1"), filepath.Join(root, "src2")
			new1 := filepath.Join(root, "a", "b", "new1")
			new2 := filepath.Join(root, "existing")
			os.Mkdir(new2, 0o755)
			target := filepath.Join(root, "restore")
			stream := backupStream(t, []tsFixture{{16384, orig1}, {16390, orig2}}, streamOpts{algorithm: "SHA256"})
			stream = stream[:len(stream)-1024] // no end-of-archive marker
			opts := ExtractOptions{TablespaceMapping: map[string]string{orig1: new1, orig2: new2}}
			if mode == "known" {
				opts.Tablespaces = map[uint32]string{16384: orig1, 16390: orig2}
			}
			if _, err := extract(t, stream, target, opts); !errors.Is(err, ErrTruncated) {
				t.Fatalf("err = %v", err)
			}
			if e, _ := os.ReadDir(root); len(e) != 1 || e[0].Name() != "existing" {
				t.Errorf("left behind: %v", e)
			}
			if e, err := os.ReadDir(new2); err != nil || len(e) != 0 {
				t.Errorf("existing location: %v %v", e, err)
			}
		})
	}
}

func TestExtractTablespacesInPlace(t *testing.T) {
	for _, alg := range []string{"SHA256", ""} {
		root := t.TempDir()
		orig := sourceTablespace(t, root, "source")
		target := filepath.Join(root, "restore")
		res, err := extract(t, backupStream(t, []tsFixture{{16384, orig}}, streamOpts{algorithm: alg}), target, ExtractOptions{TablespacesInPlace: true})
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(filepath.Join(target, "pg_tblspc/16384")); err != nil || !fi.IsDir() {
			t.Errorf("in-place tablespace: %v %v", fi, err)
		}
		if _, err := os.Stat(filepath.Join(target, "tablespace_map")); !errors.Is(err, fs.ErrNotExist) {
			t.Error("tablespace_map kept")
		}
		m, _ := os.ReadFile(filepath.Join(target, "backup_manifest"))
		if bytes.Contains(m, []byte("tablespace_map")) || !bytes.Contains(m, []byte(`"PG_VERSION"`)) {
			t.Errorf("manifest:\n%s", m)
		}
		want := []ExtractedTablespace{{16384, orig, filepath.Join(target, "pg_tblspc/16384"), true}}
		if !slices.Equal(res.Tablespaces, want) || !res.RemovedTablespaceMap || !res.RewroteManifest {
			t.Errorf("result %+v", res)
		}
		assertSourceUntouched(t, orig)
		verifyBackup(t, target)
	}
}

// TestExtractSourceInPlaceTablespace: a PG16+ in-place tablespace of the
// source (not in tablespace_map) stays a directory next to a relocated one.
func TestExtractSourceInPlaceTablespace(t *testing.T) {
	for _, mode := range []string{"staged", "map first", "known"} {
		t.Run(mode, func(t *testing.T) {
			root := t.TempDir()
			orig := filepath.Join(root, "src")
			newLoc := filepath.Join(root, "new")
			target := filepath.Join(root, "restore")
			so := streamOpts{major: 16, algorithm: "CRC32C", inPlace: []uint32{16400}, mapFirst: mode == "map first"}
			opts := ExtractOptions{TablespaceMapping: map[string]string{orig: newLoc}}
			if mode == "known" {
				opts.Tablespaces = map[uint32]string{16384: orig, 16400: "pg_tblspc/16400"}
			}
			res, err := extract(t, backupStream(t, []tsFixture{{16384, orig}}, so), target, opts)
			if err != nil {
				t.Fatal(err)
			}
			assertTablespace(t, target, 16384, newLoc, so)
			if fi, err := os.Lstat(filepath.Join(target, "pg_tblspc/16400")); err != nil || !fi.IsDir() {
				t.Errorf("in-place tablespace: %v %v", fi, err)
			}
			want := []ExtractedTablespace{{16384, orig, newLoc, false}, {16400, "pg_tblspc/16400", filepath.Join(target, "pg_tblspc/16400"), true}}
			if !slices.Equal(res.Tablespaces, want) {
				t.Errorf("tablespaces %+v", res.Tablespaces)
			}
			verifyBackup(t, target)
		})
	}
}

// TestExtractTablespaceMapEscaping: the map is read and rewritten in the
// escaping of the server version the stream says (PG_VERSION), with
// locations holding backslashes, newlines and carriage returns.
func TestExtractTablespaceMapEscaping(t *testing.T) {
	for _, major := range []int{13, 14, 17} {
		for _, mode := range []string{"staged", "map first"} {
			t.Run(fmt.Sprintf("%d/%s", major, mode), func(t *testing.T) {
				root := t.TempDir()
				orig := filepath.Join(root, `odd\\ name`+"\nwith\rbreaks")
				newLoc := filepath.Join(root, `new\ loc`+"\n2")
				target := filepath.Join(root, "restore")
				so := streamOpts{major: major, algorithm: "CRC32C", mapFirst: mode == "map first"}
				res, err := extract(t, backupStream(t, []tsFixture{{16384, orig}}, so), target, ExtractOptions{TablespaceMapping: map[string]string{orig: newLoc}})
				if err != nil {
					t.Fatal(err)
				}
				assertTablespace(t, target, 16384, newLoc, so)
				b, _ := os.ReadFile(filepath.Join(target, "tablespace_map"))
				if want := escapeMap([]tsFixture{{16384, newLoc}}, major); string(b) != want {
					t.Errorf("tablespace_map = %q, want %q", b, want)
				}
				if len(res.Tablespaces) != 1 || res.Tablespaces[0].OriginalLocation != orig {
					t.Errorf("tablespaces %+v", res.Tablespaces)
				}
				verifyBackup(t, target)
			})
		}
	}
	t.Run("13 cannot hold a trailing backslash", func(t *testing.T) {
		root := t.TempDir()
		orig := filepath.Join(root, "src")
		target := filepath.Join(root, "restore")
		_, err := extract(t, backupStream(t, []tsFixture{{16384, orig}}, streamOpts{major: 13}), target, ExtractOptions{TablespaceMapping: map[string]string{orig: filepath.Join(root, `x\`)}})
		if err == nil || !strings.Contains(err.Error(), "ends with a backslash") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestExtractTablespaceErrors(t *testing.T) {
	tests := []struct {
		name   string
		tss    []tsFixture
		so     streamOpts
		opts   func(root string) ExtractOptions
		stream func(t *testing.T, root string) []byte
		want   string
	}{
		{
			name: "no tablespace_map", so: streamOpts{noMap: true, noManifest: true},
			want: "has no tablespace_map",
		},
		{
			name: "options disagree with the map",
			opts: func(root string) ExtractOptions {
				return ExtractOptions{Tablespaces: map[uint32]string{16384: filepath.Join(root, "elsewhere")}, TablespaceMapping: map[string]string{"16384": filepath.Join(root, "new")}}
			},
			want: "tablespace_map says",
		},
		{
			name: "map lists a tablespace without files",
			stream: func(t *testing.T, root string) []byte {
				return build(t, []entry{file("tablespace_map", "16384 "+filepath.Join(root, "ts")+"\n"), file("PG_VERSION", "15\n")}, true)
			},
			opts: func(root string) ExtractOptions {
				return ExtractOptions{TablespaceMapping: map[string]string{filepath.Join(root, "ts"): filepath.Join(root, "new")}}
			},
			want: "has no files in the stream",
		},
		{
			name: "malformed map",
			stream: func(t *testing.T, root string) []byte {
				return build(t, []entry{dir("pg_tblspc/16384/"), file("tablespace_map", "16384\n")}, true)
			},
			want: `want "<oid> <path>"`,
		},
		{
			// No server writes it; 13-15 would restore a link named
			// "016384", 16+ one named 16384.
			name: "OID with a leading zero",
			stream: func(t *testing.T, root string) []byte {
				return build(t, []entry{dir("pg_tblspc/16384/"), file("tablespace_map", "016384 /x\n")}, true)
			},
			want: `invalid OID "016384"`,
		},
		{
			name: "location inside the target",
			opts: func(root string) ExtractOptions {
				return ExtractOptions{TablespaceMapping: map[string]string{filepath.Join(root, "src"): filepath.Join(root, "restore", "ts")}}
			},
			want: "overlaps the target directory",
		},
		{
			name: "two tablespaces in one place", tss: []tsFixture{{16384, "/src/a"}, {16390, "/src/b"}},
			opts: func(root string) ExtractOptions {
				return ExtractOptions{TablespaceMapping: map[string]string{"/src/a": filepath.Join(root, "ts"), "/src/b": filepath.Join(root, "ts", "b")}}
			},
			want: "overlaps tablespace 16384",
		},
		{
			name: "manifest entry does not match tablespace_map",
			stream: func(t *testing.T, root string) []byte {
				src := filepath.Join(root, "src")
				s := backupStream(t, []tsFixture{{16384, src}}, streamOpts{algorithm: "CRC32C"})
				return bytes.Replace(s, []byte("16384 "+src+"\n"), []byte("16384 "+src[:len(src)-1]+"X\n"), 1)
			},
			opts: func(root string) ExtractOptions {
				return ExtractOptions{TablespaceMapping: map[string]string{filepath.Join(root, "srX"): filepath.Join(root, "new")}}
			},
			want: "checksum mismatch for tablespace_map",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tss := tc.tss
			if tss == nil {
				tss = []tsFixture{{16384, filepath.Join(root, "src")}}
			}
			var stream []byte
			if tc.stream != nil {
				stream = tc.stream(t, root)
			} else {
				stream = backupStream(t, tss, tc.so)
			}
			var opts ExtractOptions
			if tc.opts != nil {
				opts = tc.opts(root)
			}
			_, err := extract(t, stream, filepath.Join(root, "restore"), opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if e, _ := os.ReadDir(root); len(e) != 0 {
				t.Errorf("left behind: %v", e)
			}
		})
	}
}

func TestParseTablespaceMapping(t *testing.T) {
	good := []struct{ in, old, new string }{
		{"/a=/b", "/a", "/b"},
		{`/a\=x=/b`, "/a=x", "/b"},
		{`/a\\=x=/b`, `/a\=x`, "/b"},
		{`/a\x=/b\=`, `/a\x`, "/b="},
		{"/a/=/b/c/", "/a", "/b/c"},
		{"/srv//ts/../ts2=/new ts é", "/srv/ts2", "/new ts é"},
		{`C:\ts=/b`, `C:\ts`, "/b"},
		{`\\server\ts=/b`, `\\server\ts`, "/b"},
		{"16384=/b/", "16384", "/b"}, // by OID (an extension)
	}
	for _, tc := range good {
		o, n, err := ParseTablespaceMapping(tc.in)
		if err != nil || o != tc.old || n != tc.new {
			t.Errorf("ParseTablespaceMapping(%q) = %q, %q, %v; want %q, %q", tc.in, o, n, err, tc.old, tc.new)
		}
	}
	bad := map[string]string{
		"=/foo":                                 `invalid tablespace mapping format "=/foo", must be "OLDDIR=NEWDIR"`,
		"/foo=":                                 `invalid tablespace mapping format "/foo=", must be "OLDDIR=NEWDIR"`,
		"foo":                                   `invalid tablespace mapping format "foo", must be "OLDDIR=NEWDIR"`,
		"/foo=/bar=/baz":                        `multiple "=" signs in tablespace mapping`,
		"foo=/bar":                              "old directory is not an absolute path in tablespace mapping: foo",
		"016384=/bar":                           "old directory is not an absolute path in tablespace mapping: 016384",
		"/foo=bar":                              "new directory is not an absolute path in tablespace mapping: bar",
		"/" + strings.Repeat("x", 1100) + "=/b": "directory name too long",
	}
	for in, want := range bad {
		if _, _, err := ParseTablespaceMapping(in); err == nil || err.Error() != want {
			t.Errorf("ParseTablespaceMapping(%.20q) = %v, want %q", in, err, want)
		}
	}
}

// TestExtractTablespaceLinkNotWritable: tablespace symlinks made by Extract are not
// a way out for later members.
func TestExtractTablespaceLinkNotWritable(t *testing.T) {
	root := t.TempDir()
	orig := filepath.Join(root, "src")
	newLoc := filepath.Join(root, "new")
	stream := build(t, []entry{
		file("tablespace_map", "16384 "+orig+"\n"),
		dir("pg_tblspc/16384/"), file("pg_tblspc/16384/PG_15_1/f", "x"),
		symlink("t", "pg_tblspc/16384"), file("t/evil", "x"),
	}, true)
	_, err := extract(t, stream, filepath.Join(root, "restore"), ExtractOptions{TablespaceMapping: map[string]string{orig: newLoc}})
	if !errors.Is(err, ErrUnsafeArchive) {
		t.Fatalf("err = %v", err)
	}
	if e, _ := os.ReadDir(root); len(e) != 0 {
		t.Errorf("left behind: %v", e)
	}
}
