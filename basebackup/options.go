package basebackup

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstreambackup/pgstreambackup/basebackup/manifest"
	"github.com/pgstreambackup/pgstreambackup/internal/pgversion"
	"github.com/pgstreambackup/pgstreambackup/internal/replproto"
	"github.com/pgstreambackup/pgstreambackup/internal/spooldir"
	"github.com/pgstreambackup/pgstreambackup/label"
	"github.com/pgstreambackup/pgstreambackup/tarstream"
)

// Options configure a backup. The zero value is a valid default: a
// self-contained backup (WAL fetched by the server), spread checkpoint, a
// manifest with CRC32C checksums, page checksums verified by the server.
//
// Options are checked by [Options.Validate] before any I/O, and again against
// the server's version once connected: an option the server cannot honour
// is an error naming the option and the version it needs, never dropped.
type Options struct {
	// Label is written to backup_label (LABEL). Empty means
	// DefaultLabel. At most 1024 bytes, without newline, CR or NUL.
	Label string

	// Checkpoint selects the start checkpoint: spread (default) or fast.
	Checkpoint Checkpoint

	// WAL selects how the WAL needed to restore the backup is included.
	// The default, WALFetch, has the server append it under pg_wal/.
	WAL WALMethod

	// WALStreaming configures WALStream: required with it (its Conn at
	// least), rejected with the other methods.
	WALStreaming *WALStreamOptions
	// WALSpoolDir is the directory streamed segments wait in until the
	// end of the backup; empty means os.TempDir(). It must exist (it is
	// checked before any I/O and never created). Any number of
	// concurrent backups, of any clusters, may share it: each spools in
	// its own new subdirectory "pgstreambackup-wal-*" (mode 0700), which
	// Close removes after success, failure or cancellation, leaving
	// nothing of ours behind; the directory itself and anything else in
	// it are never touched. Allow room for the WAL written during the
	// backup. With VerifyManifest, Backup also copies the WAL that
	// passes (fetched or streamed) into its own "pgstreambackup-verify-wal-*"
	// subdirectory here, to decode its records once the end is known.
	WALSpoolDir string

	// Compression compresses the stream on the client: gzip, zstd (with
	// workers: compression runs concurrently with receiving) or lz4. The
	// compressed stream's end mark is written only with the tar trailer,
	// after the server confirmed the end.
	Compression tarstream.CompressionOptions

	// VerifyManifest checks the stream against the manifest in the same
	// pass: every file is hashed (with Options.ManifestChecksums) as it
	// goes through, and compared when the manifest arrives at the end; a
	// difference fails the stream (ErrManifestMismatch) instead of
	// ending it in io.EOF.
	VerifyManifest bool

	// ServerCompression has the server compress the archives (PostgreSQL
	// 15+), saving network bandwidth. Backup decompresses them to merge
	// the one stream; StartArchives passes them through as sent.
	ServerCompression ServerCompression

	// Tablespaces selects what happens to user tablespaces: inlined under
	// pg_tblspc/<oid>/ (default), or refused: the backup fails before any
	// data when the server has user tablespaces.
	Tablespaces TablespaceMode

	// Wait controls whether the server waits, at the end, until the WAL
	// the backup needs has been archived. WaitAuto (default) waits only
	// when WAL is WALNone, as pg_basebackup does.
	Wait Wait

	// MaxRate limits the server's transfer rate in bytes per second.
	// 0 means unlimited; otherwise it must lie in [MinMaxRate, MaxMaxRate].
	// The server works in kB/s: the value is rounded down to a kB.
	MaxRate int64

	// EstimateSize asks the server for a size estimate per tablespace
	// (PROGRESS), at the cost of an extra directory scan.
	EstimateSize bool

	// Manifest controls the backup manifest (on by default).
	Manifest ManifestMode

	// Incremental, when set, makes the backup incremental (PostgreSQL 17+):
	// it holds the backup_manifest of the backup this one builds on, byte
	// for byte as the server wrote it. It is checked before any I/O (a
	// version 2 manifest, from 17+, with a WAL range), then against the
	// server (same system identifier, summarize_wal on), uploaded with
	// UPLOAD_MANIFEST and BASE_BACKUP runs with INCREMENTAL on the same
	// connection. Relation files that changed little come as
	// INCREMENTAL.<name> files; the result is not a data directory until
	// combined with the chain back to a full backup
	// (basebackup/incremental.Combine). Needs a manifest (the next
	// incremental and Combine need this backup's).
	Incremental []byte

	// Target, when set (PostgreSQL 15+, BASE_BACKUP TARGET), makes the
	// server keep the backup instead of sending it: "server" stores it in
	// the server-side directory TargetDetail (superuser or
	// pg_write_server_files), "blackhole" discards it; an extension may
	// add others. "" and "client" send it to us. StartArchives only: the
	// archives it then returns carry no bytes (the server sends their
	// names and progress only), WAL must be WALFetch or WALNone and there
	// is no client-side compression.
	Target       string
	TargetDetail string

	// ManifestChecksums selects the manifest's file checksum algorithm;
	// the zero value is the server default (CRC32C).
	ManifestChecksums manifest.ChecksumAlgorithm

	// VerifyChecksums controls the server's page-checksum verification
	// (on by default when the cluster has data checksums).
	VerifyChecksums Verify

	// RecoveryConfig, when set, makes the backup start as a standby, like
	// pg_basebackup -R: its text is appended to postgresql.auto.conf (the
	// member is rewritten as it passes) and an empty standby.signal is
	// added. Backup only; for an extracted directory see
	// WriteRecoveryConfig.
	RecoveryConfig *RecoveryConfig

	// ChecksumFailures decides what page checksum failures reported by the
	// server do: fail the backup (default; Read returns an error matching
	// ErrChecksumFailure), or only be reported in Result.ChecksumFailures
	// and the logger (the data is complete, but the source has corrupt
	// pages).
	ChecksumFailures ChecksumFailureMode

	// MaxManifestSize bounds the manifest, which waits until the end of
	// the backup (it goes out as the stream's last member, so its size
	// must be known): in memory up to ManifestMemoryLimit, spooled to disk
	// beyond. 0 means DefaultMaxManifestSize. A larger manifest fails the
	// backup with ErrManifestTooLarge.
	MaxManifestSize int64
	// ManifestMemoryLimit is how much of the manifest Backup keeps in
	// memory; a larger one (about 200 bytes per file: 4 MiB is some 20,000
	// files) is spooled to a temporary file in ManifestSpoolDir, so
	// memory stays bounded whatever the number of files. 0 means
	// DefaultManifestMemoryLimit; -1 keeps it in memory. Either way
	// Result.OpenManifest reads it; after a successful backup the spool
	// file outlives Stream.Close until Result.Release.
	ManifestMemoryLimit int64
	// ManifestSpoolDir is the directory a large manifest is spooled to
	// (Backup only); empty means os.TempDir(). Like WALSpoolDir, it must
	// exist (Backup checks it before any I/O, unless the manifest is off
	// or kept in memory), may be shared by any number of concurrent
	// backups, and is left as it was: the spool is a private
	// subdirectory "pgstreambackup-manifest-*" that Stream.Close removes
	// when the backup failed, and Result.Release once it succeeded.
	ManifestSpoolDir string

	// OnProgress, when set, is called from the goroutine that reads the
	// stream at most once per ProgressInterval (default 1s), at every
	// archive boundary and at the end. Set EstimateSize for a total.
	OnProgress       func(Progress)
	ProgressInterval time.Duration

	// Logger receives server notices and progress milestones. nil: silent.
	Logger *slog.Logger

	// OnNotice, when set, is called with every NoticeResponse (NOTICE,
	// WARNING, ...) the server sends during the backup, from the
	// goroutine that calls Read.
	OnNotice func(*pgconn.Notice)

	// OnBackupLabel, when set, is called once with the raw and parsed
	// backup_label when it passes through the stream (it is the first
	// member of the data directory). An error it returns fails the backup.
	OnBackupLabel func(raw []byte, l *label.BackupLabel) error
}

const (
	// DefaultLabel is used when Options.Label is empty.
	DefaultLabel = "pgstreambackup base backup"
	// MinMaxRate and MaxMaxRate bound Options.MaxRate (32 kB/s to 1 GB/s,
	// PostgreSQL's limits).
	MinMaxRate = replproto.MinMaxRateKB * 1024
	MaxMaxRate = replproto.MaxMaxRateKB * 1024
	// DefaultMaxManifestSize is the manifest limit when
	// Options.MaxManifestSize is 0.
	DefaultMaxManifestSize = 256 << 20
	// DefaultManifestMemoryLimit is the in-memory part of the manifest
	// when Options.ManifestMemoryLimit is 0.
	DefaultManifestMemoryLimit = 4 << 20
)

// Checkpoint selects the kind of checkpoint that starts the backup.
type Checkpoint int

const (
	CheckpointSpread Checkpoint = iota // spread over checkpoint_completion_target (server default)
	CheckpointFast                     // immediate
)

// WALMethod selects how WAL is included in the backup.
type WALMethod int

const (
	// WALFetch has the server append the WAL needed for consistency to the
	// data directory's archive, under pg_wal/. It fails when the server
	// recycled a needed segment before the end of the backup.
	WALFetch WALMethod = iota
	// WALNone includes no WAL: the backup is restorable only with a WAL
	// archive covering its start to end LSN.
	WALNone
	// WALStream streams the WAL on a second replication connection
	// (Options.WALStreaming) while the backup runs, from a temporary slot by
	// default, like pg_basebackup -X stream: a busy server cannot recycle
	// a needed segment first. Segments are spooled to disk (bounded memory)
	// and placed under pg_wal/ at the end.
	WALStream
)

// ServerCompression asks a PostgreSQL 15+ server to compress archives.
// The zero value means none.
type ServerCompression struct {
	Method tarstream.Compression
	// Level: 0 is the server's default; gzip 1–9, lz4 1–12, zstd -131072..22.
	Level int
	// Workers: zstd only, when the server's libzstd has threads.
	Workers int
	// Long enables zstd long-distance matching (PostgreSQL 16+).
	Long bool
	// Spec, when set, is sent instead of the fields above, unchecked:
	// "METHOD[:DETAIL]" as pg_basebackup relays -Z server-METHOD[:DETAIL],
	// for the server to judge (it refuses what it does not accept before
	// any data, with its own message). Method must then be None; archive
	// names and Archive.Compression follow METHOD when it is gzip, lz4 or
	// zstd.
	Spec string
}

// method is the compression the server applies: Method, or Spec's.
func (c ServerCompression) method() tarstream.Compression {
	if c.Spec == "" {
		return c.Method
	}
	name, _, _ := strings.Cut(c.Spec, ":")
	for _, m := range []tarstream.Compression{tarstream.Gzip, tarstream.LZ4, tarstream.Zstd} {
		if m.String() == name {
			return m
		}
	}
	return tarstream.None
}

// detail returns COMPRESSION_DETAIL ("" when everything is default).
func (c ServerCompression) detail() string {
	var parts []string
	if c.Level != 0 {
		parts = append(parts, fmt.Sprintf("level=%d", c.Level))
	}
	if c.Workers != 0 {
		parts = append(parts, fmt.Sprintf("workers=%d", c.Workers))
	}
	if c.Long {
		parts = append(parts, "long")
	}
	return strings.Join(parts, ",")
}

func (c ServerCompression) validate() []error {
	var errs []error
	if c.Spec != "" && (c.Method != tarstream.None || c.Level != 0 || c.Workers != 0 || c.Long) {
		errs = append(errs, errors.New("Options.ServerCompression: Spec excludes Method, Level, Workers and Long"))
	}
	lo, hi := 0, 0
	switch c.Method {
	case tarstream.None:
		if c.Level != 0 || c.Workers != 0 || c.Long {
			errs = append(errs, errors.New("Options.ServerCompression: level, workers or long need a method"))
		}
	case tarstream.Gzip:
		lo, hi = 1, 9
	case tarstream.LZ4:
		lo, hi = 1, 12
	case tarstream.Zstd:
		lo, hi = -131072, 22
	default:
		errs = append(errs, fmt.Errorf("Options.ServerCompression: unknown method %d", c.Method))
	}
	if c.Level != 0 && (c.Level < lo || c.Level > hi) {
		errs = append(errs, fmt.Errorf("Options.ServerCompression: %s level %d outside [%d, %d]", c.Method, c.Level, lo, hi))
	}
	if (c.Workers != 0 || c.Long) && c.Method != tarstream.Zstd {
		errs = append(errs, fmt.Errorf("Options.ServerCompression: workers and long are for zstd only, not %s", c.Method))
	}
	if c.Workers < 0 {
		errs = append(errs, fmt.Errorf("Options.ServerCompression: negative worker count %d", c.Workers))
	}
	return errs
}

// ChecksumFailureMode selects what page checksum failures do.
type ChecksumFailureMode int

const (
	ChecksumFailuresFail   ChecksumFailureMode = iota // fail the backup (default)
	ChecksumFailuresReport                            // complete the backup, report the failures
)

// TablespaceMode selects how user tablespaces are handled.
type TablespaceMode int

const (
	TablespacesInline TablespaceMode = iota // under pg_tblspc/<oid>/ in the stream
	TablespacesRefuse                       // fail before any data if the server has user tablespaces
)

// Wait controls waiting for WAL archiving at the end of the backup.
type Wait int

const (
	WaitAuto Wait = iota // wait only when WAL is WALNone
	WaitYes              // always wait (WAIT true)
	WaitNo               // never wait (WAIT false / NOWAIT)
)

// ManifestMode controls the backup manifest.
type ManifestMode int

const (
	ManifestOn          ManifestMode = iota // request a manifest (default)
	ManifestOff                             // no manifest
	ManifestForceEncode                     // a manifest with every path hex-encoded
)

// Verify is a tri-state for server-side page checksum verification.
type Verify int

const (
	VerifyDefault Verify = iota // the server's default: verify when the cluster has checksums
	VerifyOff                   // do not verify (NOVERIFY_CHECKSUMS / VERIFY_CHECKSUMS 0)
)

// Validate checks the options without any I/O and reports every problem at
// once, each naming the field. Errors match ErrInvalidOptions.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if o.Label != "" {
		if err := label.ValidateLabelText(o.Label); err != nil {
			bad("Options.Label: %w", err)
		}
	}
	if o.Checkpoint < CheckpointSpread || o.Checkpoint > CheckpointFast {
		bad("Options.Checkpoint: unknown value %d", o.Checkpoint)
	}
	if o.WAL < WALFetch || o.WAL > WALStream {
		bad("Options.WAL: unknown value %d", o.WAL)
	}
	errs = append(errs, o.walStreamingProblems()...)
	if o.Wait < WaitAuto || o.Wait > WaitNo {
		bad("Options.Wait: unknown value %d", o.Wait)
	}
	if o.MaxRate != 0 && (o.MaxRate < MinMaxRate || o.MaxRate > MaxMaxRate) {
		bad("Options.MaxRate %d bytes/s: must be 0 (unlimited) or in [%d, %d] (32 kB/s to 1 GB/s)", o.MaxRate, MinMaxRate, MaxMaxRate)
	}
	if o.Manifest < ManifestOn || o.Manifest > ManifestForceEncode {
		bad("Options.Manifest: unknown value %d", o.Manifest)
	}
	if err := o.ManifestChecksums.Validate(); err != nil {
		bad("Options.ManifestChecksums: %v", err)
	} else if o.ManifestChecksums != manifest.ChecksumDefault && o.Manifest == ManifestOff {
		bad("Options.ManifestChecksums %s: requires a manifest, but Options.Manifest is ManifestOff", o.ManifestChecksums)
	}
	if o.VerifyChecksums < VerifyDefault || o.VerifyChecksums > VerifyOff {
		bad("Options.VerifyChecksums: unknown value %d", o.VerifyChecksums)
	}
	if err := o.Compression.Validate(); err != nil {
		bad("Options.Compression: %w", err)
	}
	errs = append(errs, o.ServerCompression.validate()...)
	if o.VerifyManifest && o.Manifest == ManifestOff {
		bad("Options.VerifyManifest needs a manifest, but Options.Manifest is ManifestOff")
	}
	if o.RecoveryConfig != nil {
		if _, err := o.RecoveryConfig.Text(); err != nil {
			bad("Options.RecoveryConfig: %w", err)
		}
	}
	if o.ChecksumFailures < ChecksumFailuresFail || o.ChecksumFailures > ChecksumFailuresReport {
		bad("Options.ChecksumFailures: unknown value %d", o.ChecksumFailures)
	}
	if o.Tablespaces < TablespacesInline || o.Tablespaces > TablespacesRefuse {
		bad("Options.Tablespaces: unknown value %d", o.Tablespaces)
	}
	if o.ProgressInterval < 0 {
		bad("Options.ProgressInterval %v: must not be negative", o.ProgressInterval)
	}
	if o.Incremental != nil {
		if o.Manifest == ManifestOff {
			bad("Options.Incremental needs a manifest (the next incremental backup and Combine need this backup's), but Options.Manifest is ManifestOff")
		}
		if _, err := priorManifest(o.Incremental); err != nil {
			bad("Options.Incremental: %w", err)
		}
	}
	errs = append(errs, o.targetProblems()...)
	if o.ManifestMemoryLimit < -1 {
		bad("Options.ManifestMemoryLimit %d: must be -1 (no limit), 0 (default) or positive", o.ManifestMemoryLimit)
	}
	if o.MaxManifestSize < 0 {
		bad("Options.MaxManifestSize %d: must not be negative", o.MaxManifestSize)
	}
	if len(errs) == 0 {
		return nil
	}
	return &OptionsError{Problems: errs}
}

// walStreamingProblems checks that WALStreaming is set exactly when WAL is
// WALStream, and checks its fields then.
func (o Options) walStreamingProblems() []error {
	switch {
	case o.WAL == WALStream && o.WALStreaming == nil:
		return []error{errors.New("Options.WAL is WALStream but Options.WALStreaming is nil: it needs at least WALStreaming.Conn, the second replication connection")}
	case o.WAL == WALStream:
		var errs []error
		for _, err := range o.WALStreaming.problems() {
			errs = append(errs, fmt.Errorf("%w", err))
		}
		return errs
	case o.WALStreaming != nil:
		return []error{fmt.Errorf("Options.WALStreaming is set but Options.WAL is %v: set WAL to WALStream, or leave WALStreaming nil", o.WAL)}
	}
	return nil
}

// targetProblems checks Target against the options it excludes.
func (o Options) targetProblems() []error {
	if o.Target == "" || o.Target == "client" {
		if o.TargetDetail != "" {
			return []error{errors.New("Options.TargetDetail needs Options.Target (\"server\"...)")}
		}
		return nil
	}
	var errs []error
	if o.WAL == WALStream {
		errs = append(errs, fmt.Errorf("Options.Target %q: WAL cannot be streamed when a backup target is used (WALFetch or WALNone)", o.Target))
	}
	if o.Compression.Method != tarstream.None {
		errs = append(errs, fmt.Errorf("Options.Target %q: client-side compression is not possible when a backup target is used (ServerCompression is)", o.Target))
	}
	return errs
}

// params resolves the options into wire parameters for a server of the
// given major version, failing for what that version cannot honour.
func (o Options) params(major int, tablespaceMap bool) (replproto.BaseBackupParams, error) {
	p := replproto.BaseBackupParams{
		Label:          o.Label,
		Progress:       o.EstimateSize,
		FastCheckpoint: o.Checkpoint == CheckpointFast,
		WAL:            o.WAL == WALFetch,
		MaxRateKB:      o.MaxRate / 1024,
		TablespaceMap:  tablespaceMap,
	}
	if p.Label == "" {
		p.Label = DefaultLabel
	}
	switch o.Wait {
	case WaitAuto:
		p.NoWait = o.WAL != WALNone
	case WaitNo:
		p.NoWait = true
	}
	p.NoVerifyChecksums = o.VerifyChecksums == VerifyOff
	switch o.Manifest {
	case ManifestOn:
		p.Manifest = "yes"
	case ManifestForceEncode:
		p.Manifest = "force-encode"
	}
	if o.ManifestChecksums != manifest.ChecksumDefault {
		p.ManifestChecksums = o.ManifestChecksums.String()
	}
	if !pgversion.Supported(major) {
		return p, &ServerVersionError{Major: major}
	}
	if sc := o.ServerCompression; sc.Spec != "" {
		if major < pgversion.MinMajorNewSyntax {
			return p, &ServerVersionError{Major: major, Option: "Options.ServerCompression", NeedMajor: pgversion.MinMajorNewSyntax}
		}
		p.CompressionSpec = sc.Spec
	} else if sc.Method != tarstream.None {
		if major < pgversion.MinMajorNewSyntax {
			return p, &ServerVersionError{Major: major, Option: "Options.ServerCompression", NeedMajor: pgversion.MinMajorNewSyntax}
		}
		if sc.Long && major < pgversion.MinMajorZstdLong {
			return p, &ServerVersionError{Major: major, Option: "Options.ServerCompression.Long", NeedMajor: pgversion.MinMajorZstdLong}
		}
		p.Compression = sc.Method.String()
		p.CompressionDetail = sc.detail()
	}
	if o.Target != "" && o.Target != "client" {
		if major < pgversion.MinMajorNewSyntax {
			return p, &ServerVersionError{Major: major, Option: "Options.Target (backup targets)", NeedMajor: pgversion.MinMajorNewSyntax}
		}
		p.Target, p.TargetDetail = o.Target, o.TargetDetail
	}
	if o.Incremental != nil {
		if major < pgversion.MinMajorIncremental {
			return p, &ServerVersionError{Major: major, Option: "Options.Incremental", NeedMajor: pgversion.MinMajorIncremental}
		}
		p.Incremental = true
	}
	return p, nil
}

// checkDirs checks, before any I/O with the server, that the directories
// the backup spools to exist (they are not created): WALSpoolDir with
// WALStream, or with VerifyManifest when stream (Backup: the WAL that
// passes waits there for its records' check), and ManifestSpoolDir when
// stream and the manifest may be spooled.
func (o Options) checkDirs(stream bool) error {
	var errs []error
	if o.WAL == WALStream || (stream && o.VerifyManifest) {
		if err := spooldir.Check("Options.WALSpoolDir", o.WALSpoolDir); err != nil {
			errs = append(errs, fmt.Errorf("basebackup: %w", err))
		}
	}
	if stream && o.Manifest != ManifestOff && o.manifestMemoryLimit() >= 0 {
		if err := spooldir.Check("Options.ManifestSpoolDir", o.ManifestSpoolDir); err != nil {
			errs = append(errs, fmt.Errorf("basebackup: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (o Options) manifestMemoryLimit() int64 {
	if o.ManifestMemoryLimit == 0 {
		return DefaultManifestMemoryLimit
	}
	return o.ManifestMemoryLimit
}

func (o Options) maxManifestSize() int64 {
	if o.MaxManifestSize == 0 {
		return DefaultMaxManifestSize
	}
	return o.MaxManifestSize
}

// checkArchiveOptions refuses, for StartArchives, the options only Backup
// applies: the archive layer hands out the server's archives as they are,
// so client compression, inline verification, recovery configuration,
// manifest spooling and the backup_label hook would be silently ignored.
func (o Options) checkArchiveOptions() error {
	var names []string
	if o.Compression.Method != tarstream.None {
		names = append(names, "Compression (compress each archive yourself, or use Backup)")
	}
	if o.VerifyManifest {
		names = append(names, "VerifyManifest")
	}
	if o.RecoveryConfig != nil {
		names = append(names, "RecoveryConfig")
	}
	if o.ManifestSpoolDir != "" || o.ManifestMemoryLimit != 0 {
		names = append(names, "ManifestSpoolDir/ManifestMemoryLimit (the manifest is an archive of its own)")
	}
	if o.OnBackupLabel != nil {
		names = append(names, "OnBackupLabel")
	}
	if len(names) == 0 {
		return nil
	}
	return &OptionsError{Problems: []error{fmt.Errorf("basebackup: StartArchives does not apply Options.%s: only Backup does", strings.Join(names, ", Options."))}}
}
