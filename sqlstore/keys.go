package sqlstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"herald"
)

// keyAlphabet is what key ids and secrets are made of.
const keyAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// keyPrefix marks a key's kind in the key itself, as Honeycomb's keys do.
var keyPrefix = map[string]string{herald.KeyConfiguration: "hcxck_", herald.KeyIngest: "hcxik_"}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	for i := range b {
		b[i] = keyAlphabet[int(b[i])%len(keyAlphabet)]
	}
	return string(b)
}

func hashKey(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// CreateAPIKey creates a key of kind (herald.KeyConfiguration or
// herald.KeyIngest) and returns it with its secret, which is not stored
// and cannot be shown again. Returns EINVALID for an unknown kind or an
// empty name.
func (s *DB) CreateAPIKey(ctx context.Context, kind, name string) (herald.APIKey, string, error) {
	prefix, ok := keyPrefix[kind]
	if !ok {
		return herald.APIKey{}, "", herald.Invalid("kind", "invalid", "want %q or %q, got %q", herald.KeyConfiguration, herald.KeyIngest, kind)
	}
	if strings.TrimSpace(name) == "" {
		return herald.APIKey{}, "", herald.Invalid("name", "missing", "a key needs a name")
	}
	id := prefix + randomString(14)
	secret := id + randomString(32)
	now := s.clock.Now()
	_, err := s.ExecContext(ctx, `INSERT INTO api_keys (id, kind, name, secret_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
		id, kind, name, hashKey(secret), now.UnixNano())
	if err != nil {
		return herald.APIKey{}, "", fmt.Errorf("sqlstore: create api key: %w", err)
	}
	return herald.APIKey{ID: id, Kind: kind, Name: name, CreatedAt: now.UTC()}, secret, nil
}

// ImportAPIKey stores a key whose secret the operator chose (the
// HERALD_API_KEY variable), unless a key with that secret exists. It
// returns the key. Returns EINVALID for a secret shorter than 20 characters.
func (s *DB) ImportAPIKey(ctx context.Context, kind, name, secret string) (herald.APIKey, error) {
	if len(secret) < 20 {
		return herald.APIKey{}, herald.Invalid("secret", "invalid", "an API key must be at least 20 characters")
	}
	if k, err := s.AuthenticateAPIKey(ctx, secret); err == nil {
		return k, nil
	}
	id := keyPrefix[kind] + randomString(14)
	now := s.clock.Now()
	_, err := s.ExecContext(ctx, `INSERT INTO api_keys (id, kind, name, secret_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
		id, kind, name, hashKey(secret), now.UnixNano())
	if err != nil {
		return herald.APIKey{}, fmt.Errorf("sqlstore: import api key: %w", err)
	}
	return herald.APIKey{ID: id, Kind: kind, Name: name, CreatedAt: now.UTC()}, nil
}

// AuthenticateAPIKey returns the live key whose secret is secret. Returns
// EUNAUTHORIZED for an unknown or revoked key.
func (s *DB) AuthenticateAPIKey(ctx context.Context, secret string) (herald.APIKey, error) {
	hash := hashKey(secret)
	now := s.clock.Now()
	if c, ok := s.keys.Load(string(hash)); ok && now.Before(c.(cachedKey).until) {
		return c.(cachedKey).key, nil
	}
	row := s.QueryRowContext(ctx, `SELECT id, kind, name, created_at, revoked_at FROM api_keys WHERE secret_hash = ?`, hash)
	k, err := scanKey(row)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return herald.APIKey{}, herald.Errorf(herald.EUNAUTHORIZED, "unknown API key")
	case err != nil:
		return herald.APIKey{}, fmt.Errorf("sqlstore: authenticate api key: %w", err)
	case k.RevokedAt != nil:
		s.keys.Delete(string(hash))
		return herald.APIKey{}, herald.Errorf(herald.EUNAUTHORIZED, "API key %s was revoked", k.ID)
	}
	s.keys.Store(string(hash), cachedKey{key: k, until: now.Add(keyCacheTTL)})
	return k, nil
}

// keyCacheTTL is how long a live key is trusted without reading it again:
// ingest sends thousands of requests a second, each with its key. A key
// revoked by this process stops working at once; one revoked by another
// (herald keys revoke) within keyCacheTTL.
const keyCacheTTL = 5 * time.Second

type cachedKey struct {
	key   herald.APIKey
	until time.Time
}

// ListAPIKeys returns every key, revoked ones included, oldest first.
func (s *DB) ListAPIKeys(ctx context.Context) ([]herald.APIKey, error) {
	rows, err := s.QueryContext(ctx, `SELECT id, kind, name, created_at, revoked_at FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list api keys: %w", err)
	}
	defer rows.Close()
	keys := []herald.APIKey{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list api keys: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// RevokeAPIKey revokes the key with id. Returns ENOTFOUND when there is
// none; revoking a revoked key is not an error.
func (s *DB) RevokeAPIKey(ctx context.Context, id string) error {
	res, err := s.ExecContext(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, s.now(), id)
	if err != nil {
		return fmt.Errorf("sqlstore: revoke api key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return herald.Errorf(herald.ENOTFOUND, "no API key %q", id)
	}
	s.keys.Range(func(hash, c any) bool {
		if c.(cachedKey).key.ID == id {
			s.keys.Delete(hash)
		}
		return true
	})
	return nil
}

type scanner interface{ Scan(...any) error }

func scanKey(row scanner) (herald.APIKey, error) {
	var k herald.APIKey
	var created int64
	var revoked sql.NullInt64
	if err := row.Scan(&k.ID, &k.Kind, &k.Name, &created, &revoked); err != nil {
		return k, err
	}
	k.CreatedAt = time.Unix(0, created).UTC()
	if revoked.Valid {
		t := time.Unix(0, revoked.Int64).UTC()
		k.RevokedAt = &t
	}
	return k, nil
}
