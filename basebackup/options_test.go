package basebackup

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

func TestValidateDefaults(t *testing.T) {
	if err := (Options{}).Validate(); err != nil {
		t.Fatalf("zero Options invalid: %v", err)
	}
	ok := Options{Label: "nightly", MaxRate: MinMaxRate, Manifest: ManifestForceEncode, ManifestChecksums: manifest.ChecksumSHA512, Checkpoint: CheckpointFast, WAL: WALNone, Wait: WaitNo, VerifyChecksums: VerifyOff}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v", ok, err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	o := Options{
		Label:             "it's\nbad",
		MaxRate:           1000,
		Manifest:          ManifestOff,
		ManifestChecksums: manifest.ChecksumSHA256,
		Checkpoint:        Checkpoint(9),
		WAL:               WALMethod(-1),
		MaxManifestSize:   -1,
	}
	err := o.Validate()
	if !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("Validate() = %v, want ErrInvalidOptions", err)
	}
	var oe *OptionsError
	if !errors.As(err, &oe) || len(oe.Problems) != 6 {
		t.Fatalf("Validate() problems = %v, want 6", err)
	}
	for _, want := range []string{"Options.Label", "Options.MaxRate 1000", "Options.ManifestChecksums SHA256: requires a manifest", "Options.Checkpoint", "Options.WAL", "Options.MaxManifestSize"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %q, missing %q", err, want)
		}
	}
}

func TestValidateMaxRateBounds(t *testing.T) {
	for rate, ok := range map[int64]bool{0: true, MinMaxRate - 1: false, MinMaxRate: true, MaxMaxRate: true, MaxMaxRate + 1: false, -5: false} {
		err := Options{MaxRate: rate}.Validate()
		if (err == nil) != ok {
			t.Errorf("Validate(MaxRate=%d) = %v, want ok=%v", rate, err, ok)
		}
	}
}

func TestValidateLabel(t *testing.T) {
	for l, ok := range map[string]bool{"x": true, "it's": true, strings.Repeat("a", 1024): true, strings.Repeat("a", 1025): false, "a\nb": false, "a\rb": false, "a\x00b": false} {
		err := Options{Label: l}.Validate()
		if (err == nil) != ok {
			t.Errorf("Validate(Label=%.20q) = %v, want ok=%v", l, err, ok)
		}
	}
}

func TestParams(t *testing.T) {
	p, err := Options{}.params(15, true)
	if err != nil {
		t.Fatal(err)
	}
	if !p.WAL || !p.NoWait || p.Manifest != "yes" || p.Label != DefaultLabel || !p.TablespaceMap {
		t.Errorf("default params = %+v", p)
	}
	p, _ = Options{WAL: WALNone}.params(15, true)
	if p.WAL || p.NoWait {
		t.Errorf("WALNone params = %+v: must wait for archiving and not fetch", p)
	}
	p, _ = Options{MaxRate: 100 * 1024 * 1024}.params(15, true)
	if p.MaxRateKB != 102400 {
		t.Errorf("MaxRateKB = %d", p.MaxRateKB)
	}
	for _, major := range []int{12, 19} {
		_, err := Options{}.params(major, true)
		var ve *ServerVersionError
		if !errors.As(err, &ve) || !errors.Is(err, ErrUnsupportedServer) || ve.Major != major {
			t.Errorf("params(%d) = %v, want ServerVersionError", major, err)
		}
	}
}

func TestParseMajor(t *testing.T) {
	for in, want := range map[string]int{"15.18 (Debian 15.18-0+deb12u1)": 15, "13.23": 13, "18beta1": 18, "18.4": 18} {
		got, err := parseMajor(in)
		if err != nil || got != want {
			t.Errorf("parseMajor(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "x", "9.6.1", "12.3", "19devel"} {
		if _, err := parseMajor(in); err == nil {
			t.Errorf("parseMajor(%q) succeeded", in)
		}
	}
}

// TestTargetAndSpecOptions: Target and ServerCompression.Spec reach the
// command on 15+, need 15, and exclude what pg_basebackup excludes.
func TestTargetAndSpecOptions(t *testing.T) {
	p, err := Options{WAL: WALNone, Target: "server", TargetDetail: "/srv/b", ServerCompression: ServerCompression{Spec: "gzip:"}}.params(15, true)
	if err != nil || p.Target != "server" || p.TargetDetail != "/srv/b" || p.CompressionSpec != "gzip:" || p.Compression != "" {
		t.Errorf("params = %+v, %v", p, err)
	}
	if p, err := (Options{Target: "client"}).params(15, true); err != nil || p.Target != "" {
		t.Errorf("Target client: %+v, %v", p, err)
	}
	for _, o := range []Options{{WAL: WALNone, Target: "blackhole"}, {ServerCompression: ServerCompression{Spec: "zstd"}}} {
		var ve *ServerVersionError
		if _, err := o.params(14, true); !errors.As(err, &ve) || ve.NeedMajor != 15 {
			t.Errorf("params(14) of %+v = %v, want ServerVersionError for 15", o, err)
		}
	}
	for _, o := range []Options{
		{WAL: WALStream, WALConn: &pgconn.PgConn{}, Target: "blackhole"},
		{WAL: WALNone, Target: "blackhole", Compression: tarstream.CompressionOptions{Method: tarstream.Gzip}},
		{TargetDetail: "/x"},
		{ServerCompression: ServerCompression{Spec: "gzip", Method: tarstream.Gzip}},
		{WAL: WALStream, WALConn: &pgconn.PgConn{}, WALStatusInterval: -time.Second},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", o)
		}
	}
	if err := (Options{WAL: WALStream, WALConn: &pgconn.PgConn{}, WALStatusInterval: time.Second}).Validate(); err != nil {
		t.Errorf("a valid WALStatusInterval: %v", err)
	}
	if m := (ServerCompression{Spec: "lz4:level=1"}).method(); m != tarstream.LZ4 {
		t.Errorf("Spec lz4 method = %v", m)
	}
}
