// Package expr parses and type-checks Honeycomb's derived-column
// expression language: function calls such as IF(LT($duration_ms, 300),
// true), columns written $name, literals and infix operators. It does no
// I/O and evaluates nothing: a store compiles the checked tree to its own
// query language (see docs/derived-columns.md for the language herald
// accepts and what each function means). A parsed tree is never changed
// after Parse returns, so goroutines may share it.
package expr

import (
	"strconv"
	"strings"
	"unicode"
)

// Node is one node of a parsed expression: *Call, *Column, *Literal,
// *Unary or *Binary. Its String is the expression in canonical syntax,
// which parses back to an equal tree.
type Node interface {
	// Pos is the 1-based column, in characters, where the node starts
	// in the source (for an operator, where the operator is).
	Pos() int
	String() string
	node()
}

// Call is a function call. Name is upper case.
type Call struct {
	At   int
	Name string
	Args []Node
}

// Column reads an event field; a field the event lacks reads as null.
type Column struct {
	At   int
	Name string
}

// Literal is a constant: nil (null), int64, float64, string or bool.
type Literal struct {
	At    int
	Value any
}

// Unary is !X (logical not) or -X (negation).
type Unary struct {
	At int
	Op string
	X  Node
}

// Binary is X Op Y, Op one of * / % - + < <= > >= = != AND OR.
type Binary struct {
	At   int
	Op   string
	X, Y Node
}

func (n *Call) Pos() int    { return n.At }
func (n *Column) Pos() int  { return n.At }
func (n *Literal) Pos() int { return n.At }
func (n *Unary) Pos() int   { return n.At }
func (n *Binary) Pos() int  { return n.At }

func (*Call) node()    {}
func (*Column) node()  {}
func (*Literal) node() {}
func (*Unary) node()   {}
func (*Binary) node()  {}

func (n *Call) String() string {
	var b strings.Builder
	b.WriteString(n.Name)
	b.WriteByte('(')
	for i, a := range n.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.String())
	}
	b.WriteByte(')')
	return b.String()
}

func (n *Column) String() string {
	if n.Name != "" && strings.IndexFunc(n.Name, func(r rune) bool { return !isColumnRune(r) }) < 0 {
		return "$" + n.Name
	}
	return "$" + strconv.Quote(n.Name)
}

func (n *Literal) String() string {
	switch v := n.Value.(type) {
	case nil:
		return "null"
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		s := strconv.FormatFloat(v, 'g', -1, 64)
		if !strings.ContainsAny(s, ".e") {
			s += ".0" // still a float when read back
		}
		return s
	case string:
		return strconv.Quote(v)
	case bool:
		return strconv.FormatBool(v)
	}
	panic("expr: literal of type " + typeName(n.Value))
}

func (n *Unary) String() string { return n.Op + n.X.String() }

func (n *Binary) String() string {
	return "(" + n.X.String() + " " + n.Op + " " + n.Y.String() + ")"
}

// isColumnRune reports whether r may appear in a column written $name.
func isColumnRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_./:=+?-", r)
}

// Columns returns the names of the columns n reads, each once, in the
// order they first appear.
func Columns(n Node) []string {
	var out []string
	seen := map[string]bool{}
	Walk(n, func(n Node) {
		if c, ok := n.(*Column); ok && !seen[c.Name] {
			seen[c.Name] = true
			out = append(out, c.Name)
		}
	})
	return out
}

// Walk calls f for n and every node under it, parents first, in source
// order.
func Walk(n Node, f func(Node)) {
	f(n)
	switch n := n.(type) {
	case *Call:
		for _, a := range n.Args {
			Walk(a, f)
		}
	case *Unary:
		Walk(n.X, f)
	case *Binary:
		Walk(n.X, f)
		Walk(n.Y, f)
	}
}
