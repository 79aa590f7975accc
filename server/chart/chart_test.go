package chart_test

import (
	"encoding/xml"
	"errors"
	"flag"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// t0 is the start of every test series: a UTC midnight.
var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// wellFormed fails t unless out parses as XML, and returns the SVG part.
func wellFormed(t testing.TB, out template.HTML) string {
	t.Helper()
	s := string(out)
	d := xml.NewDecoder(strings.NewReader("<root>" + s + "</root>"))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "output is not well-formed XML:\n%s", s)
	}
	end := strings.Index(s, "</svg>")
	require.Positive(t, end, "no </svg>")
	require.True(t, strings.HasPrefix(s, "<svg "), "output starts with the svg")
	require.Contains(t, s[end:], `<div class="sr-only"><table>`, "the data table follows the svg")
	return s[:end+len("</svg>")]
}

// noNonFinite fails t if out contains a formatted NaN or infinity. Callers
// make sure no label says "NaN" or "Inf".
func noNonFinite(t testing.TB, out template.HTML) {
	t.Helper()
	require.NotContains(t, string(out), "NaN")
	require.NotContains(t, string(out), "Inf")
}

// attrs returns the values of attribute name in every element of class
// class.
func attrs(s, class, name string) []string {
	re := regexp.MustCompile(`<[a-z]+ class="` + regexp.QuoteMeta(class) + `"[^>]*? ` + name + `="([^"]*)"`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name string, got template.HTML) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got), "run go test -update to accept the change, after checking it in a browser")
}

func ptr(v float64) *float64 { return &v }
