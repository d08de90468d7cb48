//go:build !linux

package pgwire

import "net"

// sockState is empty outside Linux: SocketReader reads the connection.
type sockState struct{}

func (sockState) init(net.Conn)                 {}
func (sockState) ok() bool                      { return false }
func (sockState) read([]byte, int) (int, error) { panic("pgwire: unreachable") }
func (sockState) release()                      {}
