package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// listFlag collects a repeatable flag's values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, " ") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// envDefaults gives every flag of fs that was not set on the command line
// the value of its environment variable, prefix + the flag name in upper
// case with dashes as underscores (--smtp-listen → HERALD_SANDBOX_SMTP_LISTEN).
// A repeatable flag takes a semicolon-separated list from the environment
// (fault specs contain commas).
func envDefaults(fs *flag.FlagSet, prefix string, getenv func(string) string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		name := envName(prefix, f.Name)
		v := getenv(name)
		if v == "" {
			return
		}
		values := []string{v}
		if _, ok := f.Value.(*listFlag); ok {
			values = strings.Split(v, ";")
		}
		for _, one := range values {
			if e := f.Value.Set(strings.TrimSpace(one)); e != nil {
				err = fmt.Errorf("%s: %w", name, e)
				return
			}
		}
	})
	return err
}

func envName(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newLogger returns the structured logger the commands log with.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q: want json or text", format)
}
