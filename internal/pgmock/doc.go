// Package pgmock is test infrastructure for the wire protocol: a loopback
// TCP proxy that forwards to a real server, can record what both sides
// sent and can cut the connection after a given number of server bytes,
// and a fake server that replays a recorded transcript, optionally cut at
// any message or byte, or altered by the test. Like a physical walsender,
// the fake server refuses SQL (pgconn's ping among it) without using up
// the transcript, and recordings leave such exchanges out (walsender.go).
package pgmock
