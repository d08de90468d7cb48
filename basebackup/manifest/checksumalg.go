package manifest

import (
	"fmt"
	"strings"
)

// ChecksumAlgorithm is a backup manifest's file checksum algorithm, the
// one type basebackup.Options, incremental.CombineOptions,
// StreamOptions and NewCollector take. The zero value,
// ChecksumDefault, means "not chosen": CRC32C for a new manifest (the
// default of the server and of PostgreSQL's tools), whatever the
// manifest uses for a check. It prints as PostgreSQL spells it
// (String, MarshalText; "" for ChecksumDefault).
type ChecksumAlgorithm int

// The algorithms of PostgreSQL's MANIFEST_CHECKSUMS option.
const (
	ChecksumDefault ChecksumAlgorithm = iota // not chosen (see the type)
	ChecksumNone                             // no file checksums
	ChecksumCRC32C                           // CRC-32C (Castagnoli), the servers' default
	ChecksumSHA224                           // SHA-224
	ChecksumSHA256                           // SHA-256
	ChecksumSHA384                           // SHA-384
	ChecksumSHA512                           // SHA-512
)

var checksumNames = [...]string{"", "NONE", "CRC32C", "SHA224", "SHA256", "SHA384", "SHA512"}

const validChecksums = "NONE, CRC32C, SHA224, SHA256, SHA384 or SHA512"

// String returns the name as PostgreSQL spells it ("" for
// ChecksumDefault).
func (a ChecksumAlgorithm) String() string {
	if a.Validate() != nil {
		return fmt.Sprintf("ChecksumAlgorithm(%d)", int(a))
	}
	return checksumNames[a]
}

// Validate reports a value outside the constants.
func (a ChecksumAlgorithm) Validate() error {
	if a < ChecksumDefault || a > ChecksumSHA512 {
		return fmt.Errorf("unknown manifest checksum algorithm %d: must be %s", int(a), validChecksums)
	}
	return nil
}

// ParseChecksumAlgorithm reads a name as PostgreSQL's tools accept it
// (NONE, CRC32C, SHA224, SHA256, SHA384, SHA512, in any case); the error
// names the value and lists the valid ones.
func ParseChecksumAlgorithm(s string) (ChecksumAlgorithm, error) {
	for i, n := range checksumNames {
		if i > 0 && strings.ToUpper(s) == n && isASCII(s) {
			return ChecksumAlgorithm(i), nil
		}
	}
	return 0, fmt.Errorf("unknown manifest checksum algorithm %q: must be %s", s, validChecksums)
}

// MarshalText writes String's name; an unknown value is an error.
func (a ChecksumAlgorithm) MarshalText() ([]byte, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return []byte(checksumNames[a]), nil
}

// UnmarshalText reads what ParseChecksumAlgorithm accepts, and "" as
// ChecksumDefault.
func (a *ChecksumAlgorithm) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*a = ChecksumDefault
		return nil
	}
	v, err := ParseChecksumAlgorithm(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
