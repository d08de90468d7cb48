// Command funclen lists the library's functions longer than a limit (80
// lines, from the func line to the closing brace) and exits 1 if one is
// in a file not named with -pending. The library is every .go file of the
// module except tests, examples/ and bench/.
//
//	go run ./scripts/funclen [-max 80] [-pending file,file]
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func main() {
	limit := flag.Int("max", 80, "the longest a function may be, in lines")
	pending := flag.String("pending", "", "comma-separated files listed but not failing (being split elsewhere)")
	flag.Parse()
	long, err := longFuncs(".", *limit)
	if err != nil {
		fmt.Fprintln(os.Stderr, "funclen:", err)
		os.Exit(2)
	}
	skip := strings.Split(*pending, ",")
	failed := 0
	for _, f := range long {
		mark := ""
		if slices.Contains(skip, f.file) {
			mark = " (pending)"
		} else {
			failed++
		}
		fmt.Printf("%s:%d: %s is %d lines%s\n", f.file, f.line, f.name, f.lines, mark)
	}
	if failed > 0 {
		fmt.Printf("%d function(s) longer than %d lines\n", failed, *limit)
		os.Exit(1)
	}
}

type longFunc struct {
	file, name  string
	line, lines int
}

// longFuncs walks root for library files and returns their functions
// longer than limit lines.
func longFuncs(root string, limit int) ([]longFunc, error) {
	var out []longFunc
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch p {
			case "examples", "bench", ".cache", ".git", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			start, end := fset.Position(fd.Pos()).Line, fset.Position(fd.End()).Line
			if n := end - start + 1; n > limit {
				out = append(out, longFunc{file: filepath.ToSlash(p), name: funcName(fd), line: start, lines: n})
			}
		}
		return nil
	})
	return out, err
}

// funcName is "Recv.Name" for a method, "Name" otherwise.
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	t := fd.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if ix, ok := t.(*ast.IndexExpr); ok {
		t = ix.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}
