package expr

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on an expression, against hostile input.
const (
	// MaxLength is the longest expression, in bytes.
	MaxLength = 4096
	// MaxDepth is the deepest nesting of nodes.
	MaxDepth = 64
	// MaxNodes is the most nodes (calls, operators, columns, literals).
	MaxNodes = 256
)

// Error is what is wrong with an expression, and where.
type Error struct {
	// Pos is the 1-based column, in characters, of the fault.
	Pos int
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("at column %d: %s", e.Pos, e.Msg) }

// Parse parses a derived-column expression. Function names, AND, OR, true,
// false and null are case-insensitive. Errors are *Error.
func Parse(src string) (Node, error) {
	if len(src) > MaxLength {
		return nil, &Error{Pos: utf8.RuneCountInString(src[:MaxLength]) + 1, Msg: fmt.Sprintf("the expression is longer than %d bytes", MaxLength)}
	}
	if !utf8.ValidString(src) {
		return nil, &Error{Pos: utf8.RuneCountInString(src[:invalidUTF8(src)]) + 1, Msg: "the expression is not valid UTF-8"}
	}
	p := &parser{lex: lexer{src: src}}
	if err := p.next(); err != nil {
		return nil, err
	}
	if p.tok.kind == tEOF {
		return nil, p.errorf(p.tok, "the expression is empty")
	}
	n, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, p.errorf(p.tok, "unexpected %s after the expression", p.tok.describe())
	}
	if deep := deepest(n, 1); deep != nil {
		return nil, &Error{Pos: deep.Pos(), Msg: fmt.Sprintf("the expression nests deeper than %d levels", MaxDepth)}
	}
	return n, nil
}

func invalidUTF8(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i
			}
		}
	}
	return len(s)
}

// deepest returns a node deeper than MaxDepth, or nil.
func deepest(n Node, depth int) Node {
	if depth > MaxDepth {
		return n
	}
	var kids []Node
	switch n := n.(type) {
	case *Call:
		kids = n.Args
	case *Unary:
		kids = []Node{n.X}
	case *Binary:
		kids = []Node{n.X, n.Y}
	}
	for _, k := range kids {
		if d := deepest(k, depth+1); d != nil {
			return d
		}
	}
	return nil
}

type tokenKind int

const (
	tEOF tokenKind = iota
	tLParen
	tRParen
	tComma
	tOp     // ! * / % + - < <= > >= = == !=
	tName   // a function name or keyword
	tColumn // $name, $"name", $`name`
	tInt
	tFloat
	tString
)

type token struct {
	kind tokenKind
	off  int    // byte offset in the source
	text string // the source text (for names, operators, numbers)
	val  string // a string's or column's value
}

func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tLParen:
		return `"("`
	case tRParen:
		return `")"`
	case tComma:
		return `","`
	case tString:
		return "string"
	case tColumn:
		return "column"
	}
	return strconv.Quote(t.text)
}

type lexer struct {
	src string
	off int
}

func (l *lexer) errorf(off int, format string, args ...any) *Error {
	return &Error{Pos: utf8.RuneCountInString(l.src[:off]) + 1, Msg: fmt.Sprintf(format, args...)}
}

func (l *lexer) next() (token, error) {
	for l.off < len(l.src) {
		r, size := utf8.DecodeRuneInString(l.src[l.off:])
		if !unicode.IsSpace(r) {
			break
		}
		l.off += size
	}
	start := l.off
	if start == len(l.src) {
		return token{kind: tEOF, off: start}, nil
	}
	c := l.src[start]
	switch {
	case c == '(':
		l.off++
		return token{kind: tLParen, off: start, text: "("}, nil
	case c == ')':
		l.off++
		return token{kind: tRParen, off: start, text: ")"}, nil
	case c == ',':
		l.off++
		return token{kind: tComma, off: start, text: ","}, nil
	case strings.HasPrefix(l.src[start:], "<=") || strings.HasPrefix(l.src[start:], ">=") ||
		strings.HasPrefix(l.src[start:], "!=") || strings.HasPrefix(l.src[start:], "=="):
		l.off += 2
		return token{kind: tOp, off: start, text: l.src[start:l.off]}, nil
	case strings.IndexByte("!*/%+-<>=", c) >= 0:
		l.off++
		return token{kind: tOp, off: start, text: l.src[start:l.off]}, nil
	case c == '"' || c == '`':
		s, err := l.str()
		if err != nil {
			return token{}, err
		}
		return token{kind: tString, off: start, val: s}, nil
	case c == '$':
		return l.column()
	case c >= '0' && c <= '9' || c == '.':
		return l.number()
	case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		for l.off < len(l.src) && (l.src[l.off] == '_' || isASCIIAlnum(l.src[l.off])) {
			l.off++
		}
		return token{kind: tName, off: start, text: l.src[start:l.off]}, nil
	}
	r, _ := utf8.DecodeRuneInString(l.src[start:])
	return token{}, l.errorf(start, "unexpected character %q", r)
}

func isASCIIAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// str reads a "string" (Go's escapes; no newline) or a `raw string`.
func (l *lexer) str() (string, error) {
	start := l.off
	quote := l.src[start]
	i := start + 1
	for ; i < len(l.src); i++ {
		c := l.src[i]
		if c == quote {
			break
		}
		if quote == '"' {
			if c == '\n' {
				return "", l.errorf(start, "newline in string; write it as \\n")
			}
			if c == '\\' {
				i++ // the escaped character, checked by Unquote
			}
		}
	}
	if i >= len(l.src) {
		return "", l.errorf(start, "unterminated string")
	}
	l.off = i + 1
	if quote == '`' {
		return l.src[start+1 : i], nil
	}
	s, err := strconv.Unquote(l.src[start:l.off])
	if err != nil {
		return "", l.errorf(start, "invalid escape in string %s", l.src[start:l.off])
	}
	if !utf8.ValidString(s) {
		return "", l.errorf(start, "the string's escapes make invalid UTF-8")
	}
	return s, nil
}

func (l *lexer) column() (token, error) {
	start := l.off
	l.off++ // $
	if l.off < len(l.src) && (l.src[l.off] == '"' || l.src[l.off] == '`') {
		name, err := l.str()
		if err != nil {
			return token{}, err
		}
		if name == "" {
			return token{}, l.errorf(start, "empty column name")
		}
		return token{kind: tColumn, off: start, val: name}, nil
	}
	for l.off < len(l.src) {
		r, size := utf8.DecodeRuneInString(l.src[l.off:])
		if !isColumnRune(r) {
			break
		}
		l.off += size
	}
	if l.off == start+1 {
		return token{}, l.errorf(start, `expected a column name after $ (write $"odd name" for names with other characters)`)
	}
	return token{kind: tColumn, off: start, val: l.src[start+1 : l.off]}, nil
}

// number reads DIGITS ('.' DIGITS)? exponent? or '.' DIGITS exponent?.
func (l *lexer) number() (token, error) {
	start := l.off
	digits := func() int {
		n := 0
		for l.off < len(l.src) && l.src[l.off] >= '0' && l.src[l.off] <= '9' {
			l.off++
			n++
		}
		return n
	}
	kind := tInt
	n := digits()
	if l.off < len(l.src) && l.src[l.off] == '.' {
		l.off++
		kind = tFloat
		if digits() == 0 {
			return token{}, l.errorf(start, "a number needs digits after its decimal point")
		}
	} else if n == 0 {
		return token{}, l.errorf(start, `unexpected "."`)
	}
	if l.off < len(l.src) && (l.src[l.off] == 'e' || l.src[l.off] == 'E') {
		l.off++
		kind = tFloat
		if l.off < len(l.src) && (l.src[l.off] == '+' || l.src[l.off] == '-') {
			l.off++
		}
		if digits() == 0 {
			return token{}, l.errorf(start, "a number needs digits in its exponent")
		}
	}
	return token{kind: kind, off: start, text: l.src[start:l.off]}, nil
}

// Binding powers of the infix operators, from Honeycomb's grammar: * / %
// bind tightest, then -, +, comparisons, equality, AND, OR. All are left
// associative.
var infix = map[string]int{
	"OR": 1, "AND": 2,
	"=": 3, "==": 3, "!=": 3,
	"<": 4, "<=": 4, ">": 4, ">=": 4,
	"+": 5, "-": 6,
	"*": 7, "/": 7, "%": 7,
}

type parser struct {
	lex   lexer
	tok   token
	nodes int
	depth int // recursion, to stop runaway nesting before the tree exists
}

func (p *parser) next() error {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) pos(t token) int { return utf8.RuneCountInString(p.lex.src[:t.off]) + 1 }

func (p *parser) errorf(t token, format string, args ...any) *Error {
	return &Error{Pos: p.pos(t), Msg: fmt.Sprintf(format, args...)}
}

// count admits one more node.
func (p *parser) count(t token) error {
	p.nodes++
	if p.nodes > MaxNodes {
		return p.errorf(t, "the expression has more than %d parts", MaxNodes)
	}
	return nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > 2*MaxDepth {
		return p.errorf(p.tok, "the expression nests deeper than %d levels", MaxDepth)
	}
	return nil
}

// infixOp returns the operator of the current token, canonical, and its
// binding power, or 0.
func (p *parser) infixOp() (string, int) {
	switch p.tok.kind {
	case tOp:
		if p.tok.text == "!" {
			return "", 0
		}
		op := p.tok.text
		if op == "==" {
			op = "="
		}
		return op, infix[op]
	case tName:
		op := strings.ToUpper(p.tok.text)
		if op == "AND" || op == "OR" {
			return op, infix[op]
		}
	}
	return "", 0
}

func (p *parser) expr() (Node, error) { return p.binary(1) }

// binary parses operands joined by operators binding at least min.
func (p *parser) binary(min int) (Node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	x, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		op, power := p.infixOp()
		if power < min {
			return x, nil
		}
		at := p.tok
		if err := p.count(at); err != nil {
			return nil, err
		}
		if err := p.next(); err != nil {
			return nil, err
		}
		y, err := p.binary(power + 1)
		if err != nil {
			return nil, err
		}
		x = &Binary{At: p.pos(at), Op: op, X: x, Y: y}
	}
}

func (p *parser) unary() (Node, error) {
	if p.tok.kind != tOp || (p.tok.text != "!" && p.tok.text != "-") {
		return p.primary()
	}
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	at := p.tok
	if err := p.next(); err != nil {
		return nil, err
	}
	if at.text == "-" && (p.tok.kind == tInt || p.tok.kind == tFloat) {
		// A negative number is one literal, as in Honeycomb's grammar;
		// this also reads -9223372036854775808.
		num := p.tok
		num.text = "-" + num.text
		num.off = at.off
		if err := p.next(); err != nil {
			return nil, err
		}
		return p.number(num)
	}
	x, err := p.unary()
	if err != nil {
		return nil, err
	}
	if lit, ok := x.(*Literal); ok && at.text == "-" {
		// -(5) and - -5 are numbers too.
		switch v := lit.Value.(type) {
		case int64:
			if v == math.MinInt64 {
				return nil, p.errorf(at, "integer out of range")
			}
			return &Literal{At: p.pos(at), Value: -v}, nil
		case float64:
			return &Literal{At: p.pos(at), Value: -v}, nil
		}
	}
	if err := p.count(at); err != nil {
		return nil, err
	}
	return &Unary{At: p.pos(at), Op: at.text, X: x}, nil
}

func (p *parser) number(t token) (Node, error) {
	if err := p.count(t); err != nil {
		return nil, err
	}
	if t.kind == tInt {
		v, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			return nil, p.errorf(t, "integer %s out of range", t.text)
		}
		return &Literal{At: p.pos(t), Value: v}, nil
	}
	v, err := strconv.ParseFloat(t.text, 64)
	if err != nil && (math.IsInf(v, 0) || math.IsNaN(v)) {
		return nil, p.errorf(t, "number %s out of range", t.text)
	}
	return &Literal{At: p.pos(t), Value: v}, nil
}

func (p *parser) primary() (Node, error) {
	t := p.tok
	switch t.kind {
	case tLParen:
		if err := p.next(); err != nil {
			return nil, err
		}
		x, err := p.expr()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tRParen {
			return nil, p.errorf(p.tok, `expected ")", found %s`, p.tok.describe())
		}
		return x, p.next()
	case tInt, tFloat:
		if err := p.next(); err != nil {
			return nil, err
		}
		return p.number(t)
	case tString:
		if err := p.count(t); err != nil {
			return nil, err
		}
		return &Literal{At: p.pos(t), Value: t.val}, p.next()
	case tColumn:
		if err := p.count(t); err != nil {
			return nil, err
		}
		return &Column{At: p.pos(t), Name: t.val}, p.next()
	case tName:
		if err := p.count(t); err != nil {
			return nil, err
		}
		if err := p.next(); err != nil {
			return nil, err
		}
		if p.tok.kind == tLParen {
			return p.call(t)
		}
		switch strings.ToLower(t.text) {
		case "true":
			return &Literal{At: p.pos(t), Value: true}, nil
		case "false":
			return &Literal{At: p.pos(t), Value: false}, nil
		case "null":
			return &Literal{At: p.pos(t), Value: nil}, nil
		}
		return nil, p.errorf(t, "unexpected name %q: write a column as $%s, and a function call with parentheses", t.text, t.text)
	case tEOF:
		return nil, p.errorf(t, "the expression ends too soon")
	}
	return nil, p.errorf(t, "unexpected %s", t.describe())
}

// call parses the arguments of a call to name; the current token is "(".
func (p *parser) call(name token) (Node, error) {
	c := &Call{At: p.pos(name), Name: strings.ToUpper(name.text), Args: []Node{}}
	if err := p.next(); err != nil {
		return nil, err
	}
	for p.tok.kind != tRParen {
		a, err := p.expr()
		if err != nil {
			return nil, err
		}
		c.Args = append(c.Args, a)
		switch p.tok.kind {
		case tComma:
			if err := p.next(); err != nil {
				return nil, err
			}
		case tRParen:
		default:
			return nil, p.errorf(p.tok, `expected "," or ")" in the arguments of %s, found %s`, c.Name, p.tok.describe())
		}
	}
	return c, p.next()
}
