package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"herald/clock"
	"herald/sqlstore"
)

const keysUsage = `Usage:
  herald keys create --name NAME [--kind configuration|ingest]
  herald keys list [--json]
  herald keys revoke ID

Manages the API keys of the herald whose data is in --data-dir (or
HERALD_DATA_DIR, default ./herald-data). It can run while herald serves.
A new key's secret is printed once; herald keeps only its hash.

Flags:
`

// runKeys is `herald keys`.
func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald keys", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), keysUsage); fs.PrintDefaults() }
	dataDir := fs.String("data-dir", "", "`directory` of herald's data (default ./herald-data)")
	kind := fs.String("kind", "configuration", "key `kind`: configuration or ingest")
	name := fs.String("name", "", "what the key is for")
	asJSON := fs.Bool("json", false, "list as JSON")
	if len(args) == 0 {
		fs.Usage()
		return errors.New("keys: a subcommand is required: create, list or revoke")
	}
	sub := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	dir := *dataDir
	if dir == "" {
		dir = getenv("HERALD_DATA_DIR")
	}
	if dir == "" {
		dir = "./herald-data"
	}
	open := func() (*sqlstore.DB, error) {
		return sqlstore.Open(ctx, filepath.Join(dir, "herald.db"), clock.Real())
	}
	switch sub {
	case "create":
		if fs.NArg() > 0 {
			return fmt.Errorf("keys create: unexpected argument %q", fs.Arg(0))
		}
		db, err := open()
		if err != nil {
			return err
		}
		defer db.Close()
		k, secret, err := db.CreateAPIKey(ctx, *kind, *name)
		if err != nil {
			return fmt.Errorf("keys create: %w", err)
		}
		fmt.Fprintf(stdout, "%s\n", secret)
		fmt.Fprintf(stderr, "created %s key %s (%q); the secret above is shown only this once\n", k.Kind, k.ID, k.Name)
		return nil
	case "list":
		db, err := open()
		if err != nil {
			return err
		}
		defer db.Close()
		keys, err := db.ListAPIKeys(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(keys)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tKIND\tNAME\tCREATED\tREVOKED")
		for _, k := range keys {
			revoked := "-"
			if k.RevokedAt != nil {
				revoked = k.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Kind, k.Name, k.CreatedAt.Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return errors.New("keys revoke: give exactly one key ID")
		}
		db, err := open()
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.RevokeAPIKey(ctx, fs.Arg(0)); err != nil {
			return fmt.Errorf("keys revoke: %w", err)
		}
		fmt.Fprintf(stderr, "revoked %s\n", fs.Arg(0))
		return nil
	}
	fs.Usage()
	return fmt.Errorf("keys: unknown subcommand %q", sub)
}
