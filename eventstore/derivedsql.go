package eventstore

import (
	"strconv"

	"herald"
	"herald/expr"
)

// The expression compiler turns a checked derived-column expression into
// DuckDB SQL over one dataset's columns, by the compiler's rules: columns
// are written by their physical names, every literal of the expression is
// a bound parameter, and the only words are SQL, functions and casts.
// Each node is written once, so the SQL grows with the expression, never
// faster. The semantics are docs/derived-columns.md's: boolean functions
// are never null, arithmetic over a missing value is null, integer
// overflow and division by zero are null rather than errors.

// exprc compiles one expression.
type exprc struct {
	cols  map[string]*column // the dataset's columns, by field name
	types expr.Types
}

// duck is the DuckDB type of an expression type; an expression that is
// always null is an empty boolean column.
func duck(t expr.Type) string {
	if t == expr.Null {
		return "BOOLEAN"
	}
	return duckType(string(t))
}

// derivedColumn writes ", <expression> AS physical" for the derived column
// dc over d's columns, and returns the column's type.
func derivedColumn(b *sqlb, d *dataset, dc *derived, physical string) (string, error) {
	if dc.node == nil {
		return "", herald.Errorf(herald.EINVALID, "derived column %q: %v", dc.Alias, dc.parseErr)
	}
	types, err := expr.Check(dc.node, func(name string) expr.Type {
		if c := d.cols[name]; c != nil {
			return expr.Type(c.typ)
		}
		return expr.Null
	})
	if err != nil {
		// The checks do not depend on column types, so an expression
		// that was saved passes them.
		return "", herald.Errorf(herald.EINVALID, "derived column %q: %v", dc.Alias, err)
	}
	t := types[dc.node]
	c := &exprc{cols: d.cols, types: types}
	b.add(", CAST(")
	c.value(b, dc.node)
	b.add(" AS " + duck(t) + ") AS " + physical)
	if t == expr.Null {
		return herald.TypeBoolean, nil
	}
	return string(t), nil
}

// value writes n as a value of its own type.
func (c *exprc) value(b *sqlb, n expr.Node) {
	switch n := n.(type) {
	case *expr.Literal:
		switch v := n.Value.(type) {
		case nil:
			b.add("NULL")
		case int64:
			b.add("CAST(? AS BIGINT)", v)
		case float64:
			b.add("CAST(? AS DOUBLE)", v)
		case string:
			b.add("CAST(? AS VARCHAR)", v)
		case bool:
			b.add("CAST(? AS BOOLEAN)", v)
		}
	case *expr.Column:
		if col := c.cols[n.Name]; col != nil {
			b.add(col.physical)
		} else {
			b.add("NULL")
		}
	case *expr.Unary:
		if n.Op == "!" {
			b.add("(NOT ")
			c.truthy(b, n.X)
			b.add(")")
			return
		}
		switch c.types[n.X] {
		case expr.Integer:
			// -(-2^63) does not fit: null, not an error.
			b.add("TRY_CAST(-CAST(")
			c.value(b, n.X)
			b.add(" AS HUGEINT) AS BIGINT)")
		case expr.Null:
			b.add("CAST(NULL AS BIGINT)")
		default:
			b.add("(-")
			c.number(b, n.X)
			b.add(")")
		}
	case *expr.Binary:
		if n.Op == "!=" {
			b.add("(NOT ")
			c.call(b, n, "EQUALS", []expr.Node{n.X, n.Y})
			b.add(")")
			return
		}
		c.call(b, n, expr.Function(n.Op), []expr.Node{n.X, n.Y})
	case *expr.Call:
		c.call(b, n, n.Name, n.Args)
	}
}

// as writes n as a value of type t, which Merge made from n's type.
func (c *exprc) as(b *sqlb, n expr.Node, t expr.Type) {
	switch from := c.types[n]; {
	case from == t:
		c.value(b, n)
	case from == expr.Null:
		b.add("CAST(NULL AS " + duck(t) + ")")
	case t == expr.String:
		c.text(b, n)
	default: // an integer read as a float
		b.add("CAST(")
		c.value(b, n)
		b.add(" AS " + duck(t) + ")")
	}
}

// text writes n as text: booleans as true and false, numbers in DuckDB's
// shortest form.
func (c *exprc) text(b *sqlb, n expr.Node) {
	switch c.types[n] {
	case expr.String:
		c.value(b, n)
	case expr.Null:
		b.add("CAST(NULL AS VARCHAR)")
	default:
		b.add("CAST(")
		c.value(b, n)
		b.add(" AS VARCHAR)")
	}
}

// number writes n as an operand of arithmetic: numbers as themselves,
// text read as a number where it is one, anything else null.
func (c *exprc) number(b *sqlb, n expr.Node) {
	switch c.types[n] {
	case expr.Integer, expr.Float:
		c.value(b, n)
	case expr.String:
		b.add("TRY_CAST(")
		c.value(b, n)
		b.add(" AS DOUBLE)")
	case expr.Boolean:
		b.add("CAST(NULL AS DOUBLE)")
	default:
		b.add("CAST(NULL AS BIGINT)")
	}
}

// float writes n as an operand of floating-point arithmetic.
func (c *exprc) float(b *sqlb, n expr.Node) {
	switch c.types[n] {
	case expr.Integer:
		b.add("CAST(")
		c.value(b, n)
		b.add(" AS DOUBLE)")
	case expr.Null:
		b.add("CAST(NULL AS DOUBLE)")
	default:
		c.number(b, n)
	}
}

// truthy writes n as a condition, never null: booleans as themselves,
// numbers true unless 0, text true when it is "true", null false.
func (c *exprc) truthy(b *sqlb, n expr.Node) {
	switch c.types[n] {
	case expr.Boolean:
		if definite(n) {
			c.value(b, n)
			return
		}
		b.add("coalesce(")
		c.value(b, n)
		b.add(", false)")
	case expr.Integer, expr.Float:
		b.add("coalesce(")
		c.value(b, n)
		b.add(" <> 0, false)")
	case expr.String:
		b.add("coalesce(")
		c.value(b, n)
		b.add(" = CAST(? AS VARCHAR), false)", "true")
	default:
		b.add("false")
	}
}

// definite reports whether n is a boolean that is never null: a
// comparison, a test or a logical operator.
func definite(n expr.Node) bool {
	switch n := n.(type) {
	case *expr.Unary:
		return n.Op == "!"
	case *expr.Binary:
		return n.Op != "+" && n.Op != "-" && n.Op != "*" && n.Op != "/" && n.Op != "%"
	case *expr.Call:
		switch n.Name {
		case "NOT", "AND", "OR", "EXISTS", "EQUALS", "IN", "LT", "LTE", "GT", "GTE",
			"STARTS_WITH", "ENDS_WITH", "CONTAINS", "REG_MATCH", "BOOL":
			return true
		}
	}
	return false
}

// list writes each of ns with f, separated by sep.
func list(b *sqlb, ns []expr.Node, sep string, f func(*sqlb, expr.Node)) {
	for i, n := range ns {
		if i > 0 {
			b.add(sep)
		}
		f(b, n)
	}
}

var comparisons = map[string]string{"LT": " < ", "LTE": " <= ", "GT": " > ", "GTE": " >= "}

var stringTests = map[string]string{"STARTS_WITH": "starts_with", "ENDS_WITH": "suffix", "CONTAINS": "contains"}

// call writes the function fn applied to args; n is the call or operator.
func (c *exprc) call(b *sqlb, n expr.Node, fn string, args []expr.Node) {
	t := c.types[n]
	switch fn {
	case "IF":
		b.add("CASE")
		for i := 0; i+1 < len(args); i += 2 {
			b.add(" WHEN ")
			c.truthy(b, args[i])
			b.add(" THEN ")
			c.as(b, args[i+1], t)
		}
		if len(args)%2 == 1 {
			b.add(" ELSE ")
			c.as(b, args[len(args)-1], t)
		}
		b.add(" END")
	case "COALESCE":
		if t == expr.Null {
			b.add("NULL")
			return
		}
		b.add("coalesce(")
		list(b, args, ", ", func(b *sqlb, a expr.Node) { c.as(b, a, t) })
		b.add(")")
	case "NOT":
		b.add("(NOT ")
		c.truthy(b, args[0])
		b.add(")")
	case "AND", "OR":
		b.add("(")
		list(b, args, " "+fn+" ", c.truthy)
		b.add(")")
	case "EXISTS":
		if c.types[args[0]] == expr.Null {
			b.add("false")
			return
		}
		b.add("(")
		c.value(b, args[0])
		b.add(" IS NOT NULL)")
	case "EQUALS":
		x, y := args[0], args[1]
		tx, ty := c.types[x], c.types[y]
		switch {
		case tx == expr.Null:
			b.add("(")
			c.value(b, y)
			b.add(" IS NULL)")
		case ty == expr.Null:
			b.add("(")
			c.value(b, x)
			b.add(" IS NULL)")
		case expr.Comparable(tx, ty):
			b.add("(")
			c.value(b, x)
			b.add(" IS NOT DISTINCT FROM ")
			c.value(b, y)
			b.add(")")
		default:
			// Values of different types are never equal; two missing
			// values are.
			b.add("(")
			c.value(b, x)
			b.add(" IS NULL AND ")
			c.value(b, y)
			b.add(" IS NULL)")
		}
	case "IN":
		tx := c.types[args[0]]
		var match []expr.Node
		for _, v := range args[1:] {
			if expr.Comparable(tx, c.types[v]) {
				match = append(match, v)
			}
		}
		if len(match) == 0 {
			b.add("false")
			return
		}
		b.add("coalesce(")
		c.value(b, args[0])
		b.add(" IN (")
		list(b, match, ", ", c.value)
		b.add("), false)")
	case "LT", "LTE", "GT", "GTE":
		tx, ty := c.types[args[0]], c.types[args[1]]
		if !expr.Comparable(tx, ty) || tx == expr.Boolean {
			b.add("false")
			return
		}
		b.add("coalesce(")
		c.value(b, args[0])
		b.add(comparisons[fn])
		c.value(b, args[1])
		b.add(", false)")
	case "STARTS_WITH", "ENDS_WITH", "CONTAINS":
		if c.types[args[0]] == expr.Null || c.types[args[1]] == expr.Null {
			b.add("false")
			return
		}
		b.add("coalesce(" + stringTests[fn] + "(")
		c.text(b, args[0])
		b.add(", ")
		c.text(b, args[1])
		b.add("), false)")
	case "REG_MATCH":
		if c.types[args[0]] == expr.Null {
			b.add("false")
			return
		}
		b.add("coalesce(regexp_matches(")
		c.text(b, args[0])
		// Check made sure the pattern is a string literal.
		b.add(", CAST(? AS VARCHAR)), false)", args[1].(*expr.Literal).Value)
	case "SUM", "MUL", "SUB":
		op := map[string]string{"SUM": "+", "MUL": "*", "SUB": "-"}[fn]
		if t == expr.Integer {
			c.fold(b, op, args)
			return
		}
		b.add("(")
		list(b, args, " "+op+" ", c.float)
		b.add(")")
	case "DIV":
		b.add("(")
		c.float(b, args[0])
		b.add(" / nullif(")
		c.float(b, args[1])
		b.add(", 0))")
	case "MOD":
		if t == expr.Integer {
			b.add("TRY_CAST(CAST(")
			c.number(b, args[0])
			b.add(" AS HUGEINT) % nullif(")
			c.number(b, args[1])
			b.add(", 0) AS BIGINT)")
			return
		}
		b.add("(")
		c.float(b, args[0])
		b.add(" % nullif(")
		c.float(b, args[1])
		b.add(", 0))")
	case "MIN", "MAX":
		if t == expr.Null {
			b.add("NULL")
			return
		}
		// least and greatest skip nulls.
		b.add(map[string]string{"MIN": "least(", "MAX": "greatest("}[fn])
		list(b, args, ", ", func(b *sqlb, a expr.Node) { c.as(b, a, t) })
		b.add(")")
	case "INT":
		x := args[0]
		switch c.types[x] {
		case expr.Integer:
			b.add("coalesce(")
			c.value(b, x)
			b.add(", 0)")
		case expr.Float:
			b.add("TRY_CAST(trunc(coalesce(")
			c.value(b, x)
			b.add(", 0)) AS BIGINT)")
		case expr.String:
			b.add("TRY_CAST(trunc(coalesce(TRY_CAST(")
			c.value(b, x)
			b.add(" AS DOUBLE), 0)) AS BIGINT)")
		default:
			b.add("CAST(0 AS BIGINT)")
		}
	case "FLOAT":
		x := args[0]
		switch c.types[x] {
		case expr.Integer, expr.Float:
			b.add("CAST(coalesce(")
			c.value(b, x)
			b.add(", 0) AS DOUBLE)")
		case expr.String:
			b.add("coalesce(TRY_CAST(")
			c.value(b, x)
			b.add(" AS DOUBLE), 0)")
		default:
			b.add("CAST(0 AS DOUBLE)")
		}
	case "STRING", "CONCAT":
		// concat skips nulls: STRING of a missing value is "".
		b.add("concat(")
		list(b, args, ", ", c.text)
		b.add(")")
	case "BOOL":
		c.truthy(b, args[0])
	default:
		// Check refuses every other function.
		panic("eventstore: no SQL for function " + fn)
	}
}

// fold writes integer arithmetic over args, left to right, each step in
// 128 bits and brought back to 64: an overflow is null, not an error.
func (c *exprc) fold(b *sqlb, op string, args []expr.Node) {
	if len(args) == 1 {
		c.number(b, args[0])
		return
	}
	b.add("TRY_CAST(CAST(")
	c.fold(b, op, args[:len(args)-1])
	b.add(" AS HUGEINT) " + op + " ")
	c.number(b, args[len(args)-1])
	b.add(" AS BIGINT)")
}

// physicalName is the name of the i-th derived column a query reads.
func physicalName(i int) string { return "d" + strconv.Itoa(i) }
