package expr

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Type is the type of a value: the column types of package herald
// ("string", "integer", "float", "boolean"), or Null for an expression
// that is always null (a column the dataset has not seen, the literal
// null).
type Type string

// The types.
const (
	Null    Type = "null"
	String  Type = "string"
	Integer Type = "integer"
	Float   Type = "float"
	Boolean Type = "boolean"
)

// Numeric reports whether t is Integer or Float.
func (t Type) Numeric() bool { return t == Integer || t == Float }

// merge returns the type of a value that is either an a or a b: the other
// when one is Null, Float for Integer and Float, String for any other
// mix.
func merge(a, b Type) Type {
	switch {
	case a == Null:
		return b
	case b == Null, a == b:
		return a
	case a.Numeric() && b.Numeric():
		return Float
	}
	return String
}

// Comparable reports whether values of types a and b compare as values
// (numbers with numbers, strings with strings, booleans with booleans).
// Values of other mixes are never equal, and never less or greater.
func Comparable(a, b Type) bool {
	return a != Null && (a == b || a.Numeric() && b.Numeric())
}

// arithmetic returns the type of SUM, SUB, MUL or MOD over operands of
// types ts, and of negation over one: Integer when every operand is an
// integer (or null), else Float.
func arithmetic(ts ...Type) Type {
	for _, t := range ts {
		if t != Integer && t != Null {
			return Float
		}
	}
	return Integer
}

// Types holds the type of every node of a checked expression.
type Types map[Node]Type

// Check checks the function calls of n (names, arities, literal
// arguments) and infers the type of every node, the columns typed by
// columns, which returns "" or Null for a column the dataset does not have
// (it reads as null). The checks do not depend on the column types, so an
// expression that passes keeps passing when columns come or change type.
// Errors are *Error.
func Check(n Node, columns func(name string) Type) (Types, error) {
	c := &checker{columns: columns, types: Types{}}
	if _, err := c.check(n); err != nil {
		return nil, err
	}
	return c.types, nil
}

// unsupported are Honeycomb's functions herald does not evaluate.
var unsupported = []string{
	"SWITCH", "REG_VALUE", "REG_COUNT", "LOG10", "BUCKET", "UNIX_TIMESTAMP", "EVENT_TIMESTAMP",
	"INGEST_TIMESTAMP", "FORMAT_TIME", "LENGTH", "TO_LOWER", "TO_UPPER", "SUBSTRING",
	"ABS", "CEIL", "FLOOR", "ROUND", "POW", "SQRT", "EXP", "LN", "LOG2", "AVG",
}

// arity is each supported function's least and most arguments (-1: any).
var arity = map[string][2]int{
	"IF": {2, -1}, "COALESCE": {1, -1}, "NOT": {1, 1}, "AND": {1, -1}, "OR": {1, -1},
	"EQUALS": {2, 2}, "IN": {2, -1}, "EXISTS": {1, 1},
	"LT": {2, 2}, "LTE": {2, 2}, "GT": {2, 2}, "GTE": {2, 2},
	"STARTS_WITH": {2, 2}, "ENDS_WITH": {2, 2}, "CONTAINS": {2, 2}, "REG_MATCH": {2, 2},
	"SUM": {1, -1}, "SUB": {2, 2}, "MUL": {1, -1}, "DIV": {2, 2}, "MOD": {2, 2}, "MIN": {1, -1}, "MAX": {1, -1},
	"INT": {1, 1}, "FLOAT": {1, 1}, "STRING": {1, 1}, "BOOL": {1, 1}, "CONCAT": {1, -1},
}

// Operators and the function each stands for ("!=" is NOT(EQUALS(…))).
var operators = map[string]string{
	"*": "MUL", "/": "DIV", "%": "MOD", "-": "SUB", "+": "SUM",
	"<": "LT", "<=": "LTE", ">": "GT", ">=": "GTE", "=": "EQUALS", "!=": "EQUALS", "AND": "AND", "OR": "OR",
}

// Function returns the function a binary operator stands for.
func Function(op string) string { return operators[op] }

type checker struct {
	columns func(string) Type
	types   Types
}

func (c *checker) check(n Node) (Type, error) {
	t, err := c.infer(n)
	if err != nil {
		return "", err
	}
	c.types[n] = t
	return t, nil
}

func (c *checker) infer(n Node) (Type, error) {
	switch n := n.(type) {
	case *Literal:
		return literalType(n.Value), nil
	case *Column:
		if t := c.columns(n.Name); t != "" {
			return t, nil
		}
		return Null, nil
	case *Unary:
		t, err := c.check(n.X)
		if err != nil {
			return "", err
		}
		if n.Op == "!" {
			return Boolean, nil
		}
		if err := number("negation", 1, n.X); err != nil {
			return "", err
		}
		return arithmetic(t), nil
	case *Binary:
		return c.function(fmt.Sprintf("operator %s", n.Op), operators[n.Op], []Node{n.X, n.Y})
	case *Call:
		if _, ok := arity[n.Name]; !ok {
			if slices.Contains(unsupported, n.Name) {
				return "", &Error{Pos: n.At, Msg: fmt.Sprintf("function %s is not supported by herald", n.Name)}
			}
			return "", &Error{Pos: n.At, Msg: fmt.Sprintf("unknown function %s", n.Name)}
		}
		a := arity[n.Name]
		switch {
		case a[1] < 0 && len(n.Args) < a[0]:
			return "", &Error{Pos: n.At, Msg: fmt.Sprintf("%s takes at least %s, got %d", n.Name, plural(a[0], "argument"), len(n.Args))}
		case a[1] >= 0 && len(n.Args) != a[0]:
			return "", &Error{Pos: n.At, Msg: fmt.Sprintf("%s takes %s, got %d", n.Name, plural(a[0], "argument"), len(n.Args))}
		}
		return c.function(n.Name, n.Name, n.Args)
	}
	panic(fmt.Sprintf("expr: unknown node %T", n))
}

// function checks a call of fn (named name in messages) with args.
func (c *checker) function(name, fn string, args []Node) (Type, error) {
	ts := make([]Type, len(args))
	for i, a := range args {
		t, err := c.check(a)
		if err != nil {
			return "", err
		}
		ts[i] = t
	}
	each := func(f func(name string, i int, n Node) error) error {
		for i, a := range args {
			if err := f(name, i+1, a); err != nil {
				return err
			}
		}
		return nil
	}
	switch fn {
	case "IF":
		t := Null
		for i := 1; i < len(args); i += 2 {
			t = merge(t, ts[i])
		}
		if len(args)%2 == 1 {
			t = merge(t, ts[len(ts)-1])
		}
		return t, nil
	case "COALESCE":
		t := Null
		for _, a := range ts {
			t = merge(t, a)
		}
		return t, nil
	case "NOT", "AND", "OR", "EXISTS", "EQUALS":
		return Boolean, nil
	case "IN":
		if err := each(func(name string, i int, n Node) error {
			if l, ok := n.(*Literal); ok && l.Value == nil && i > 1 {
				return &Error{Pos: n.Pos(), Msg: fmt.Sprintf("%s never matches null; use NOT(EXISTS(…)) for a missing value", name)}
			}
			return nil
		}); err != nil {
			return "", err
		}
		return Boolean, nil
	case "LT", "LTE", "GT", "GTE":
		return Boolean, each(comparable)
	case "STARTS_WITH", "ENDS_WITH", "CONTAINS", "REG_MATCH":
		if err := each(notNull); err != nil {
			return "", err
		}
		pattern, ok := args[1].(*Literal)
		s, isString := literalString(pattern, ok)
		if fn == "REG_MATCH" && !isString {
			return "", &Error{Pos: args[1].Pos(), Msg: fmt.Sprintf("%s: argument 2 must be a string literal holding a regular expression", name)}
		}
		if ok && !isString {
			return "", &Error{Pos: args[1].Pos(), Msg: fmt.Sprintf("%s: argument 2 must be a string, not %s", name, describe(pattern.Value))}
		}
		if fn == "REG_MATCH" {
			if _, err := regexp.Compile(s); err != nil {
				return "", &Error{Pos: args[1].Pos(), Msg: fmt.Sprintf("%s: invalid regular expression: %v", name, strings.TrimPrefix(err.Error(), "error parsing regexp: "))}
			}
		}
		return Boolean, nil
	case "SUM", "SUB", "MUL", "MOD":
		return arithmetic(ts...), each(number)
	case "DIV":
		return Float, each(number)
	case "MIN", "MAX":
		t := Null
		for _, a := range ts {
			switch {
			case t == Null, t == a:
				t = a
			case a == Null:
			case t.Numeric() && a.Numeric():
				t = Float
			default:
				t = String
			}
		}
		return t, nil
	case "INT":
		return Integer, nil
	case "FLOAT":
		return Float, nil
	case "STRING", "CONCAT":
		return String, nil
	case "BOOL":
		return Boolean, nil
	}
	panic("expr: no rule for " + fn)
}

func literalString(l *Literal, ok bool) (string, bool) {
	if !ok {
		return "", false
	}
	s, isString := l.Value.(string)
	return s, isString
}

// number refuses a literal that is not a number or a numeric string.
func number(name string, i int, n Node) error {
	l, ok := n.(*Literal)
	if !ok {
		return nil
	}
	switch v := l.Value.(type) {
	case int64, float64:
		return nil
	case string:
		if _, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			return nil
		}
		return &Error{Pos: n.Pos(), Msg: fmt.Sprintf("%s: argument %d, %q, is not a number", name, i, v)}
	}
	return &Error{Pos: n.Pos(), Msg: fmt.Sprintf("%s: argument %d must be a number, not %s", name, i, describe(l.Value))}
}

// comparable refuses a null or boolean literal: comparisons order numbers
// and strings.
func comparable(name string, i int, n Node) error {
	if l, ok := n.(*Literal); ok {
		switch l.Value.(type) {
		case nil, bool:
			return &Error{Pos: n.Pos(), Msg: fmt.Sprintf("%s compares numbers or strings; argument %d is %s", name, i, describe(l.Value))}
		}
	}
	return nil
}

func notNull(name string, i int, n Node) error {
	if l, ok := n.(*Literal); ok && l.Value == nil {
		return &Error{Pos: n.Pos(), Msg: fmt.Sprintf("%s: argument %d is null", name, i)}
	}
	return nil
}

func literalType(v any) Type {
	switch v.(type) {
	case int64:
		return Integer
	case float64:
		return Float
	case string:
		return String
	case bool:
		return Boolean
	}
	return Null
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	}
	return typeName(v)
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
