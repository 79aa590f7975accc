package expr_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"herald/expr"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ src, want string }{
		// Canonical form: upper-case names, parenthesized operators.
		{`if(equals($channel,"email"), equals($outcome,"delivered"))`, `IF(EQUALS($channel, "email"), EQUALS($outcome, "delivered"))`},
		{`SUM(1, 2,)`, `SUM(1, 2)`},
		{`COALESCE($a, )`, `COALESCE($a)`},
		{`$service.name`, `$service.name`},
		{`$a/b:c=d+e?f-g_h`, `$a/b:c=d+e?f-g_h`},
		{`$"odd \"name\""`, `$"odd \"name\""`},
		{"$`raw name`", `$"raw name"`},
		{`$日本`, `$日本`},
		{`"tab\tline\nquote\"back\\"`, `"tab\tline\nquote\"back\\"`},
		{"`C:\\path\\d+`", `"C:\\path\\d+"`},
		{`true`, `true`}, {`FALSE`, `false`}, {`Null`, `null`},
		{`42`, `42`}, {`-42`, `-42`}, {`- 42`, `-42`}, {`-(42)`, `-42`}, {`- -42`, `42`},
		{`-9223372036854775808`, `-9223372036854775808`},
		{`2.5`, `2.5`}, {`1e3`, `1000.0`}, {`.5`, `0.5`}, {`1.5E-3`, `0.0015`}, {`-0.0`, `-0.0`},
		// Precedence: ! and unary -, then * / %, -, +, comparisons, equality, AND, OR.
		{`1 + 2 * 3`, `(1 + (2 * 3))`},
		{`1 * 2 + 3`, `((1 * 2) + 3)`},
		{`1 - 2 - 3`, `((1 - 2) - 3)`},
		{`1 + 2 - 3`, `(1 + (2 - 3))`},
		{`1 - 2 + 3`, `((1 - 2) + 3)`},
		{`$a < 1 = $b >= 2`, `(($a < 1) = ($b >= 2))`},
		{`$a == 1 and $b != 2 or !$c`, `((($a = 1) AND ($b != 2)) OR !$c)`},
		{`$a OR $b AND $c`, `($a OR ($b AND $c))`},
		{`-$a * 2`, `(-$a * 2)`},
		{`!($a OR $b)`, `!($a OR $b)`},
		{`$a -1`, `($a - 1)`},
		{`AND($a, $b)`, `AND($a, $b)`},
		{`((($a)))`, `$a`},
		{" \t\n$a\n", `$a`},
	} {
		n, err := expr.Parse(c.src)
		require.NoError(t, err, c.src)
		require.Equal(t, c.want, n.String(), c.src)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		src string
		pos int
		msg string
	}{
		{``, 1, "empty"},
		{`   `, 4, "empty"},
		{`IF(`, 4, "ends too soon"},
		{`IF($a $b)`, 7, `expected "," or ")"`},
		{`F(,)`, 3, `unexpected ","`},
		{`($a`, 4, `expected ")"`},
		{`$a)`, 3, `unexpected ")" after the expression`},
		{`duration_ms`, 1, "write a column as $duration_ms"},
		{`$`, 1, "expected a column name after $"},
		{`$""`, 1, "empty column name"},
		{`"abc`, 1, "unterminated string"},
		{"`abc", 1, "unterminated string"},
		{"\"a\nb\"", 1, "newline in string"},
		{`EQUALS($a, "x\qy")`, 12, "invalid escape"},
		{`"\xff"`, 1, "invalid UTF-8"},
		{"\xff", 1, "not valid UTF-8"},
		{`1.`, 1, "digits after its decimal point"},
		{`1e`, 1, "digits in its exponent"},
		{`99999999999999999999`, 1, "out of range"},
		{`1e400`, 1, "out of range"},
		{`-(-9223372036854775808)`, 1, "out of range"},
		{`$a # 1`, 4, "unexpected character '#'"},
		{`é $a`, 1, "unexpected character"},
		{`1 2`, 3, "after the expression"},
		{`"é" + #`, 7, "unexpected character"}, // columns count characters, not bytes
	} {
		_, err := expr.Parse(c.src)
		var e *expr.Error
		require.ErrorAs(t, err, &e, c.src)
		require.Equal(t, c.pos, e.Pos, "%s: %v", c.src, err)
		require.Contains(t, e.Error(), c.msg, c.src)
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	check := func(src string, ok bool, msg string) {
		t.Helper()
		_, err := expr.Parse(src)
		if ok {
			require.NoError(t, err)
			return
		}
		require.ErrorContains(t, err, msg)
	}
	check(`"`+strings.Repeat("x", expr.MaxLength-2)+`"`, true, "")
	check(`"`+strings.Repeat("x", expr.MaxLength-1)+`"`, false, "longer than 4096 bytes")

	nest := func(n int) string { return strings.Repeat("NOT(", n-1) + "$a" + strings.Repeat(")", n-1) }
	check(nest(expr.MaxDepth), true, "")
	check(nest(expr.MaxDepth+1), false, "nests deeper than 64 levels")
	check(strings.Repeat("(", 1000)+"1"+strings.Repeat(")", 1000), false, "nests deeper")
	check(strings.Repeat("!", 1000)+"true", false, "nests deeper")
	check(strings.Repeat("1 + ", 64)+"1", false, "nests deeper") // a chain is as deep as it is long

	args := func(n int) string { return "SUM(" + strings.Repeat("1, ", n-2) + "1)" }
	check(args(expr.MaxNodes), true, "")
	check(args(expr.MaxNodes+1), false, "more than 256 parts")
}

func TestCheck(t *testing.T) {
	t.Parallel()
	columns := map[string]expr.Type{"s": expr.String, "i": expr.Integer, "f": expr.Float, "b": expr.Boolean}
	typeOf := func(name string) expr.Type { return columns[name] }
	for _, c := range []struct {
		src  string
		want expr.Type
	}{
		{`$s`, expr.String}, {`$missing`, expr.Null}, {`null`, expr.Null},
		{`IF(EQUALS($channel, "email"), EQUALS($outcome, "delivered"))`, expr.Boolean},
		{`IF($b, 1)`, expr.Integer},
		{`IF($b, 1, 2.5)`, expr.Float},
		{`IF($b, 1, "x")`, expr.String},
		{`IF($b, null, $i, 2, $f)`, expr.Float},
		{`IF($b, 1, $b, 2)`, expr.Integer},
		{`COALESCE($missing, $i)`, expr.Integer},
		{`COALESCE($s, $b)`, expr.String},
		{`NOT($s)`, expr.Boolean}, {`AND($i, $f)`, expr.Boolean}, {`OR($b)`, expr.Boolean},
		{`EQUALS($i, "1")`, expr.Boolean}, {`IN($s, "a", 1)`, expr.Boolean}, {`EXISTS($missing)`, expr.Boolean},
		{`LT($i, 2)`, expr.Boolean}, {`$s >= "a"`, expr.Boolean}, {`$i != $f`, expr.Boolean},
		{`STARTS_WITH($s, "a")`, expr.Boolean}, {`ENDS_WITH($i, $s)`, expr.Boolean}, {`CONTAINS($s, "x")`, expr.Boolean},
		{"REG_MATCH($s, `^\\d+$`)", expr.Boolean},
		{`SUM($i, 1)`, expr.Integer}, {`SUM($i, 1.5)`, expr.Float}, {`SUM($i, "2")`, expr.Float}, {`SUM($i, $missing)`, expr.Integer},
		{`$i - 1`, expr.Integer}, {`$i * $f`, expr.Float}, {`$i / 2`, expr.Float}, {`$i % 2`, expr.Integer},
		{`SUB($i, $s)`, expr.Float}, {`MUL(2, 3, 4)`, expr.Integer}, {`DIV(4, 2)`, expr.Float}, {`MOD($f, 2)`, expr.Float},
		{`-$i`, expr.Integer}, {`-$f`, expr.Float}, {`-$s`, expr.Float}, {`!$i`, expr.Boolean},
		{`MIN($i, 2)`, expr.Integer}, {`MAX($i, $f)`, expr.Float}, {`MIN($s, "a")`, expr.String},
		{`MAX($s, 1)`, expr.String}, {`MIN($missing)`, expr.Null}, {`MAX($b, $b)`, expr.Boolean},
		{`INT($s)`, expr.Integer}, {`FLOAT($i)`, expr.Float}, {`STRING($b)`, expr.String}, {`BOOL($s)`, expr.Boolean},
		{`CONCAT($s, 1, true)`, expr.String},
	} {
		n, err := expr.Parse(c.src)
		require.NoError(t, err, c.src)
		types, err := expr.Check(n, typeOf)
		require.NoError(t, err, c.src)
		require.Equal(t, c.want, types[n], c.src)
	}
}

func TestCheckErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		src string
		pos int
		msg string
	}{
		{`FOO($a)`, 1, "unknown function FOO"},
		{`$a + REG_VALUE($b, "x")`, 6, "function REG_VALUE is not supported by herald"},
		{`LOG10($a)`, 1, "function LOG10 is not supported by herald"},
		{`format_time("%Y", $a)`, 1, "function FORMAT_TIME is not supported by herald"},
		{`IF($a)`, 1, "IF takes at least 2 arguments, got 1"},
		{`EQUALS($a)`, 1, "EQUALS takes 2 arguments, got 1"},
		{`NOT($a, $b)`, 1, "NOT takes 1 argument, got 2"},
		{`IN($a)`, 1, "IN takes at least 2 arguments"},
		{`CONCAT()`, 1, "CONCAT takes at least 1 argument, got 0"},
		{`REG_MATCH($a, $b)`, 15, "must be a string literal"},
		{`REG_MATCH($a, "a(b")`, 15, "invalid regular expression: missing closing )"},
		{`STARTS_WITH($a, 5)`, 17, "argument 2 must be a string, not an integer"},
		{`CONTAINS(null, "x")`, 10, "argument 1 is null"},
		{`SUM($a, "abc")`, 9, `SUM: argument 2, "abc", is not a number`},
		{`SUM($a, true)`, 9, "must be a number, not a boolean"},
		{`$a * null`, 6, "operator *: argument 2 must be a number, not null"},
		{`-"x"`, 2, "negation: argument 1"},
		{`LT($a, null)`, 8, "LT compares numbers or strings; argument 2 is null"},
		{`$a > false`, 6, "operator > compares numbers or strings; argument 2 is a boolean"},
		{`IN($a, "x", null)`, 13, "IN never matches null"},
		{`IF(EXISTS($a), FOO())`, 16, "unknown function FOO"},
	} {
		n, err := expr.Parse(c.src)
		require.NoError(t, err, c.src)
		_, err = expr.Check(n, func(string) expr.Type { return "" })
		var e *expr.Error
		require.ErrorAs(t, err, &e, c.src)
		require.Equal(t, c.pos, e.Pos, "%s: %v", c.src, err)
		require.Contains(t, e.Error(), c.msg, c.src)
	}
}

func TestColumns(t *testing.T) {
	t.Parallel()
	n, err := expr.Parse(`IF(AND(NOT(EXISTS($trace.parent_id)), EXISTS($duration_ms)), LTE($duration_ms, 300))`)
	require.NoError(t, err)
	require.Equal(t, []string{"trace.parent_id", "duration_ms"}, expr.Columns(n))
}
