package basebackup_test

import (
	"testing"

	"github.com/pgstreambackup/pgstreambackup/internal/pgtest"
)

// TestMain stops the clusters pgtest.Shared started for this package.
func TestMain(m *testing.M) { pgtest.Main(m) }
