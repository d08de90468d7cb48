// Command doccheck lists the exported identifiers of the library's public
// packages that have no doc comment (a const or var group's comment
// counts for its members) and exits 1 if there is one.
//
//	go run ./scripts/doccheck [dir...]
package main

import (
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
)

var publicPackages = []string{"basebackup", "basebackup/manifest", "basebackup/incremental", "tarstream", "wal", "label"}

func main() {
	dirs := os.Args[1:]
	if len(dirs) == 0 {
		dirs = publicPackages
	}
	missing := 0
	for _, dir := range dirs {
		names, err := undocumented(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "doccheck:", err)
			os.Exit(2)
		}
		for _, n := range names {
			fmt.Printf("%s: %s has no doc comment\n", dir, n)
		}
		missing += len(names)
	}
	if missing > 0 {
		fmt.Printf("%d exported identifier(s) undocumented\n", missing)
		os.Exit(1)
	}
}

// undocumented returns the exported identifiers of the package in dir
// (tests excluded) that go doc would show without a comment.
func undocumented(dir string) ([]string, error) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []*ast.File
	for _, e := range entries {
		if n := e.Name(); e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	var out []string
	{
		d, err := doc.NewFromFiles(fset, files, "example.com/"+dir)
		if err != nil {
			return nil, err
		}
		if d.Doc == "" {
			out = append(out, "package "+d.Name)
		}
		out = append(out, values(d.Consts)...)
		out = append(out, values(d.Vars)...)
		out = append(out, funcs(d.Funcs, "")...)
		for _, t := range d.Types {
			if t.Doc == "" {
				out = append(out, "type "+t.Name)
			}
			out = append(out, values(t.Consts)...)
			out = append(out, values(t.Vars)...)
			out = append(out, funcs(t.Funcs, "")...)
			out = append(out, funcs(t.Methods, t.Name+".")...)
		}
	}
	return out, nil
}

func values(vs []*doc.Value) []string {
	var out []string
	for _, v := range vs {
		if v.Doc != "" {
			continue
		}
		for _, n := range v.Names {
			if token.IsExported(n) && !documentedSpec(v.Decl, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// documentedSpec reports whether name's own spec in a group has a doc or
// line comment, or an earlier spec's doc names it ("A and B bound...").
func documentedSpec(decl *ast.GenDecl, name string) bool {
	for _, s := range decl.Specs {
		vs, ok := s.(*ast.ValueSpec)
		if !ok {
			continue
		}
		if vs.Doc != nil && strings.Contains(vs.Doc.Text(), name) {
			return true
		}
		for _, n := range vs.Names {
			if n.Name == name {
				return vs.Doc != nil || vs.Comment != nil
			}
		}
	}
	return false
}

func funcs(fs []*doc.Func, prefix string) []string {
	var out []string
	for _, f := range fs {
		if f.Doc == "" && token.IsExported(f.Name) {
			out = append(out, prefix+f.Name)
		}
	}
	return out
}
