//go:build !unix

package tarstream

// noFollow: no O_NOFOLLOW here; O_EXCL still refuses an existing name.
const noFollow = 0
