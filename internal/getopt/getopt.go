// Package getopt parses command lines the way glibc's getopt_long does,
// for the example programs that are drop-ins for PostgreSQL's tools (whose
// option handling and messages come from getopt_long).
package getopt

import (
	"fmt"
	"os"
	"strings"
)

// Long is one long option: its name, whether it takes an argument, and
// the short option it stands for (a long-only option uses a byte that is
// not in the optstring, e.g. 1, 2...).
type Long struct {
	Name   string
	HasArg bool
	Short  byte
}

// Opt is one option found on the command line, in order: its short
// option (or a long-only option's code) and its argument.
type Opt struct {
	Short byte
	Arg   string
}

// Parse parses args (args[0] is the program name) the way glibc's
// getopt_long does: short options may be combined (-qs) and take their
// argument attached (-mFILE) or as the next word; long options take it as
// --opt=value or --opt value and may be abbreviated to a unique prefix;
// "--" ends the options; operands may come anywhere (they are moved after
// the options) unless POSIXLY_CORRECT is set. shorts is a getopt optstring
// ("ab:": b takes an argument). On the first bad option it returns the
// message glibc prints (starting with args[0]) and ok=false.
func Parse(args []string, shorts string, longs []Long) (opts []Opt, operands []string, msg string, ok bool) {
	prog := args[0]
	posix := os.Getenv("POSIXLY_CORRECT") != ""
	takesArg := func(c byte) (known, hasArg bool) {
		if c == ':' {
			return false, false
		}
		i := strings.IndexByte(shorts, c)
		if i < 0 {
			return false, false
		}
		return true, i+1 < len(shorts) && shorts[i+1] == ':'
	}
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return opts, append(operands, args[i+1:]...), "", true
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			o, m := matchLong(longs, name)
			if m != "" {
				return nil, nil, fmt.Sprintf("%s: %s", prog, m), false
			}
			if o == nil {
				return nil, nil, fmt.Sprintf("%s: unrecognized option '%s'", prog, a), false
			}
			switch {
			case !o.HasArg && hasVal:
				return nil, nil, fmt.Sprintf("%s: option '--%s' doesn't allow an argument", prog, o.Name), false
			case o.HasArg && !hasVal:
				if i+1 >= len(args) {
					return nil, nil, fmt.Sprintf("%s: option '--%s' requires an argument", prog, o.Name), false
				}
				i++
				val = args[i]
			}
			opts = append(opts, Opt{Short: o.Short, Arg: val})
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				c := a[j]
				known, hasArg := takesArg(c)
				if !known {
					return nil, nil, fmt.Sprintf("%s: invalid option -- '%c'", prog, c), false
				}
				if !hasArg {
					opts = append(opts, Opt{Short: c})
					continue
				}
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return nil, nil, fmt.Sprintf("%s: option requires an argument -- '%c'", prog, c), false
					}
					i++
					val = args[i]
				}
				opts = append(opts, Opt{Short: c, Arg: val})
				break
			}
		default:
			if posix {
				return opts, append(operands, args[i:]...), "", true
			}
			operands = append(operands, a)
		}
	}
	return opts, operands, "", true
}

// matchLong finds the long option name stands for: an exact match, else
// the options it is a prefix of, which must all mean the same (same short
// option and argument rule) or the name is ambiguous (msg says so).
func matchLong(longs []Long, name string) (o *Long, msg string) {
	for i := range longs {
		if longs[i].Name == name {
			return &longs[i], ""
		}
	}
	var found []*Long
	for i := range longs {
		if strings.HasPrefix(longs[i].Name, name) {
			found = append(found, &longs[i])
		}
	}
	if len(found) == 0 {
		return nil, ""
	}
	for _, f := range found[1:] {
		if f.Short != found[0].Short || f.HasArg != found[0].HasArg {
			var b strings.Builder
			fmt.Fprintf(&b, "option '--%s' is ambiguous; possibilities:", name)
			for _, f := range found {
				fmt.Fprintf(&b, " '--%s'", f.Name)
			}
			return nil, b.String()
		}
	}
	return found[0], ""
}
