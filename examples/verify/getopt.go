package main

import (
	"fmt"
	"os"
	"strings"
)

// longOpt is one long option: its name, whether it takes an argument,
// and the short option it stands for.
type longOpt struct {
	name   string
	hasArg bool
	short  byte
}

// parsedOpt is one option found on the command line, in order.
type parsedOpt struct {
	short byte
	arg   string
}

// getoptLong parses args (args[0] is the program name) the way glibc's
// getopt_long does: short options may be combined (-qs) and take their
// argument attached (-mFILE) or as the next word; long options take it as
// --opt=value or --opt value and may be abbreviated to a unique prefix;
// "--" ends the options; operands may come anywhere (they are moved after
// the options) unless POSIXLY_CORRECT is set. shorts is a getopt optstring
// ("ab:": b takes an argument). On the first bad option it returns the
// message glibc prints (starting with args[0]) and ok=false.
func getoptLong(args []string, shorts string, longs []longOpt) (opts []parsedOpt, operands []string, msg string, ok bool) {
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
			case !o.hasArg && hasVal:
				return nil, nil, fmt.Sprintf("%s: option '--%s' doesn't allow an argument", prog, o.name), false
			case o.hasArg && !hasVal:
				if i+1 >= len(args) {
					return nil, nil, fmt.Sprintf("%s: option '--%s' requires an argument", prog, o.name), false
				}
				i++
				val = args[i]
			}
			opts = append(opts, parsedOpt{short: o.short, arg: val})
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				c := a[j]
				known, hasArg := takesArg(c)
				if !known {
					return nil, nil, fmt.Sprintf("%s: invalid option -- '%c'", prog, c), false
				}
				if !hasArg {
					opts = append(opts, parsedOpt{short: c})
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
				opts = append(opts, parsedOpt{short: c, arg: val})
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
func matchLong(longs []longOpt, name string) (o *longOpt, msg string) {
	for i := range longs {
		if longs[i].name == name {
			return &longs[i], ""
		}
	}
	var found []*longOpt
	for i := range longs {
		if strings.HasPrefix(longs[i].name, name) {
			found = append(found, &longs[i])
		}
	}
	if len(found) == 0 {
		return nil, ""
	}
	for _, f := range found[1:] {
		if f.short != found[0].short || f.hasArg != found[0].hasArg {
			var b strings.Builder
			fmt.Fprintf(&b, "option '--%s' is ambiguous; possibilities:", name)
			for _, f := range found {
				fmt.Fprintf(&b, " '--%s'", f.name)
			}
			return nil, b.String()
		}
	}
	return found[0], ""
}
