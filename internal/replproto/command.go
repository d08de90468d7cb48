package replproto

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pgstreambackup/pgstreambackup/internal/pgversion"
)

// BaseBackupParams are BASE_BACKUP options already resolved to what goes on
// the wire. The zero value asks for the server's defaults.
type BaseBackupParams struct {
	Label             string // LABEL; empty: omitted (server default "base backup")
	Progress          bool   // PROGRESS: size estimate in the tablespace header
	FastCheckpoint    bool   // FAST / CHECKPOINT 'fast'
	WAL               bool   // WAL: append the needed WAL to the base archive
	NoWait            bool   // NOWAIT / WAIT 0: do not wait for WAL archiving
	MaxRateKB         int64  // MAX_RATE in kB/s; 0: omitted (unlimited)
	TablespaceMap     bool   // TABLESPACE_MAP
	NoVerifyChecksums bool   // NOVERIFY_CHECKSUMS / VERIFY_CHECKSUMS 0
	Manifest          string // MANIFEST value: "" (omitted), "yes" or "force-encode"
	ManifestChecksums string // MANIFEST_CHECKSUMS; "": server default (CRC32C)
	Compression       string // 15+: COMPRESSION method ("gzip", "lz4", "zstd"); "": none
	CompressionDetail string // 15+: COMPRESSION_DETAIL
	// CompressionSpec (15+), when set, replaces Compression and
	// CompressionDetail: "METHOD[:DETAIL]" relayed as is, COMPRESSION
	// METHOD and, after a colon, COMPRESSION_DETAIL DETAIL even when
	// empty (for the server's own check, as pg_basebackup relays -Z).
	CompressionSpec        string
	compressionDetailEmpty bool
	Incremental            bool   // 17+: INCREMENTAL
	Target                 string // 15+: TARGET ("server", "blackhole"...); "": 'client'
	TargetDetail           string // 15+: TARGET_DETAIL (the server's directory for "server")
}

// Version limits of the options above (pgversion holds them).
const (
	MinMajor            = pgversion.MinMajor            // oldest server this client supports
	MaxMajor            = pgversion.MaxMajor            // newest server this client was tested against
	MinMajorNewSyntax   = pgversion.MinMajorNewSyntax   // parenthesised options, single COPY stream
	MinMajorIncremental = pgversion.MinMajorIncremental // INCREMENTAL, UPLOAD_MANIFEST
	MinMaxRateKB        = 32
	MaxMaxRateKB        = 1048576
)

// BaseBackupCommand returns the BASE_BACKUP command for a server of the given
// major version. It fails when a parameter cannot be expressed for that
// version (it never drops one) or a value cannot be quoted safely.
func BaseBackupCommand(p BaseBackupParams, major int) (string, error) {
	if err := checkParams(&p, major); err != nil {
		return "", err
	}
	newSyntax := major >= MinMajorNewSyntax
	opts, err := commonOptions(p, newSyntax)
	if err != nil {
		return "", err
	}
	if newSyntax {
		if err := opts.addNewSyntaxOptions(p); err != nil {
			return "", err
		}
		return "BASE_BACKUP (" + strings.Join(opts, ", ") + ")", nil
	}
	if len(opts) == 0 {
		return "BASE_BACKUP", nil
	}
	return "BASE_BACKUP " + strings.Join(opts, " "), nil
}

// checkParams rejects parameters that contradict each other or that the
// server major cannot express, and splits CompressionSpec into
// Compression and CompressionDetail.
func checkParams(p *BaseBackupParams, major int) error {
	if major < MinMajor {
		return fmt.Errorf("server major version %d is older than %d", major, MinMajor)
	}
	if p.MaxRateKB != 0 && (p.MaxRateKB < MinMaxRateKB || p.MaxRateKB > MaxMaxRateKB) {
		return fmt.Errorf("MAX_RATE %d kB/s outside [%d, %d]", p.MaxRateKB, MinMaxRateKB, MaxMaxRateKB)
	}
	if p.ManifestChecksums != "" && p.Manifest == "" {
		return fmt.Errorf("MANIFEST_CHECKSUMS requires MANIFEST")
	}
	if p.CompressionDetail != "" && p.Compression == "" {
		return fmt.Errorf("COMPRESSION_DETAIL requires COMPRESSION")
	}
	if p.CompressionSpec != "" {
		if p.Compression != "" || p.CompressionDetail != "" {
			return fmt.Errorf("CompressionSpec excludes Compression and CompressionDetail")
		}
		method, detail, hasDetail := strings.Cut(p.CompressionSpec, ":")
		p.Compression = method
		if hasDetail {
			p.CompressionDetail, p.compressionDetailEmpty = detail, detail == ""
		}
	}
	if major < MinMajorNewSyntax && p.Compression != "" {
		return fmt.Errorf("server-side compression needs PostgreSQL %d or later, server is %d", MinMajorNewSyntax, major)
	}
	if major < MinMajorNewSyntax && p.Target != "" {
		return fmt.Errorf("backup targets need PostgreSQL %d or later, server is %d", MinMajorNewSyntax, major)
	}
	if p.TargetDetail != "" && p.Target == "" {
		return fmt.Errorf("TARGET_DETAIL requires TARGET")
	}
	if major < MinMajorIncremental && p.Incremental {
		return fmt.Errorf("incremental backup needs PostgreSQL %d or later, server is %d", MinMajorIncremental, major)
	}
	return nil
}

// optionList is the options of a BASE_BACKUP command, in order.
type optionList []string

// quoted adds "name 'v'", failing when v cannot be quoted safely.
func (l *optionList) quoted(name, v string) error {
	q, err := QuoteLiteral(v)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	*l = append(*l, name+" "+q)
	return nil
}

// pick returns the spelling of an option for the server's syntax.
func pick(newSyntax bool, modern, legacy string) string {
	if newSyntax {
		return modern
	}
	return legacy
}

// commonOptions returns the options both syntaxes have, spelled for the
// server's.
func commonOptions(p BaseBackupParams, newSyntax bool) (optionList, error) {
	var opts optionList
	if p.Label != "" {
		if err := opts.quoted("LABEL", p.Label); err != nil {
			return nil, err
		}
	}
	if p.Progress {
		opts = append(opts, "PROGRESS")
	}
	if p.FastCheckpoint {
		opts = append(opts, pick(newSyntax, "CHECKPOINT 'fast'", "FAST"))
	}
	if p.WAL {
		opts = append(opts, "WAL")
	}
	if p.NoWait {
		opts = append(opts, pick(newSyntax, "WAIT 0", "NOWAIT"))
	}
	if p.MaxRateKB != 0 {
		opts = append(opts, "MAX_RATE "+strconv.FormatInt(p.MaxRateKB, 10))
	}
	if p.TablespaceMap {
		opts = append(opts, "TABLESPACE_MAP")
	}
	if p.NoVerifyChecksums {
		opts = append(opts, pick(newSyntax, "VERIFY_CHECKSUMS 0", "NOVERIFY_CHECKSUMS"))
	}
	if p.Manifest != "" {
		if p.Manifest != "yes" && p.Manifest != "force-encode" {
			return nil, fmt.Errorf("MANIFEST %q: must be yes or force-encode", p.Manifest)
		}
		if err := opts.quoted("MANIFEST", p.Manifest); err != nil {
			return nil, err
		}
	}
	if p.ManifestChecksums != "" {
		if err := opts.quoted("MANIFEST_CHECKSUMS", p.ManifestChecksums); err != nil {
			return nil, err
		}
	}
	return opts, nil
}

// addNewSyntaxOptions adds the options only the 15+ syntax has: TARGET
// (always, 'client' by default), TARGET_DETAIL, COMPRESSION,
// COMPRESSION_DETAIL and INCREMENTAL.
func (l *optionList) addNewSyntaxOptions(p BaseBackupParams) error {
	if p.Target == "" {
		*l = append(*l, "TARGET 'client'")
	} else if err := l.quoted("TARGET", p.Target); err != nil {
		return err
	}
	if p.TargetDetail != "" {
		if err := l.quoted("TARGET_DETAIL", p.TargetDetail); err != nil {
			return err
		}
	}
	if p.Compression != "" {
		if err := l.quoted("COMPRESSION", p.Compression); err != nil {
			return err
		}
	}
	if p.CompressionDetail != "" || p.compressionDetailEmpty {
		if err := l.quoted("COMPRESSION_DETAIL", p.CompressionDetail); err != nil {
			return err
		}
	}
	if p.Incremental {
		*l = append(*l, "INCREMENTAL")
	}
	return nil
}
