package expr_test

import (
	"strings"
	"testing"

	"herald/expr"
)

// same reports whether two trees are equal but for positions.
func same(a, b expr.Node) bool {
	switch a := a.(type) {
	case *expr.Call:
		b, ok := b.(*expr.Call)
		if !ok || a.Name != b.Name || len(a.Args) != len(b.Args) {
			return false
		}
		for i := range a.Args {
			if !same(a.Args[i], b.Args[i]) {
				return false
			}
		}
		return true
	case *expr.Column:
		b, ok := b.(*expr.Column)
		return ok && a.Name == b.Name
	case *expr.Literal:
		b, ok := b.(*expr.Literal)
		return ok && a.Value == b.Value
	case *expr.Unary:
		b, ok := b.(*expr.Unary)
		return ok && a.Op == b.Op && same(a.X, b.X)
	case *expr.Binary:
		b, ok := b.(*expr.Binary)
		return ok && a.Op == b.Op && same(a.X, b.X) && same(a.Y, b.Y)
	}
	return false
}

// FuzzParse: no input panics the parser or the checker; every error has a
// position inside the input (or just past it); and what parses prints in
// canonical syntax that parses back to the same tree.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`IF(EQUALS($channel,"email"), EQUALS($outcome,"delivered"))`,
		`IF(AND(NOT(EXISTS($trace.parent_id)), EXISTS($duration_ms)), LTE($duration_ms, 300))`,
		`IF(LT($a, 1), "low", LT($a, 10), "mid", "high",)`,
		`-5 * $a - 3 + 2 / .5e1 % 7`, `!$a and $b OR $c == 1 != false`,
		"$`raw name` != `x` + $\"q\\\"uote\"", `- -9223372036854775808`,
		`COALESCE(null, $x, "\u00e9\t\n")`, "REG_MATCH($path, `^/api/v[0-9]+/`)",
		`IN($status, 200, 201, "ok")`, `CONCAT(INT($a), FLOAT("2"), STRING(true), BOOL(0))`,
		`MIN(MAX($a, 1), SUM(1, 2, 3), SUB(4, 5), MUL(6), DIV(7, 8), MOD(9, 10))`,
		`STARTS_WITH($a, "x") OR ENDS_WITH($a, "y") AND CONTAINS($a, "z")`, `$a-b <= $c/d`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		n, err := expr.Parse(src)
		if err != nil {
			e, ok := err.(*expr.Error)
			if !ok || e.Pos < 1 || e.Pos > len([]rune(src))+1 || e.Msg == "" {
				t.Fatalf("bad error %#v for %q", err, src)
			}
			return
		}
		out := n.String()
		back, err := expr.Parse(out)
		if err != nil {
			if len(out) > expr.MaxLength && strings.Contains(err.Error(), "longer than") {
				return // escapes can make the canonical form longer
			}
			t.Fatalf("%q printed as %q, which does not parse: %v", src, out, err)
		}
		if !same(n, back) {
			t.Fatalf("%q printed as %q, which parses to %s", src, out, back)
		}
		if back.String() != out {
			t.Fatalf("canonical form not stable: %q then %q", out, back.String())
		}
		types, err := expr.Check(n, func(name string) expr.Type {
			return []expr.Type{expr.Null, expr.String, expr.Integer, expr.Float, expr.Boolean}[len(name)%5]
		})
		if err != nil {
			if e, ok := err.(*expr.Error); !ok || e.Pos < 1 || e.Pos > len([]rune(src))+1 {
				t.Fatalf("bad check error %#v for %q", err, src)
			}
			return
		}
		if types[n] == "" {
			t.Fatalf("no type for %q", src)
		}
	})
}
