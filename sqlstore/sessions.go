package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"herald"
)

// Session is a signed-in browser of the web UI.
type Session struct {
	// Key is the API key it signed in with.
	Key herald.APIKey
	// CSRF is the token every form of the session must carry.
	CSRF      string
	ExpiresAt time.Time
}

// CreateSession starts a session for the live key keyID lasting ttl, and
// returns its token: shown once, stored only as a hash. Expired sessions
// are removed on the way.
func (s *DB) CreateSession(ctx context.Context, keyID string, ttl time.Duration) (token string, sess Session, err error) {
	token, csrf := randomString(32), randomString(24)
	now := s.now()
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM ui_sessions WHERE expires_at <= ?`, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO ui_sessions (token_hash, key_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			hashKey(token), keyID, csrf, now, now+int64(ttl))
		return err
	})
	if err != nil {
		return "", Session{}, fmt.Errorf("sqlstore: create session: %w", err)
	}
	sess, err = s.Session(ctx, token)
	return token, sess, err
}

// Session returns the live session with this token. Returns EUNAUTHORIZED
// when there is none, it expired, or its key was revoked.
func (s *DB) Session(ctx context.Context, token string) (Session, error) {
	var sess Session
	var expires, created int64
	var revoked sql.NullInt64
	err := s.QueryRowContext(ctx, `SELECT s.csrf, s.expires_at, k.id, k.kind, k.name, k.created_at, k.revoked_at
		FROM ui_sessions s JOIN api_keys k ON k.id = s.key_id WHERE s.token_hash = ?`, hashKey(token)).
		Scan(&sess.CSRF, &expires, &sess.Key.ID, &sess.Key.Kind, &sess.Key.Name, &created, &revoked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Session{}, herald.Errorf(herald.EUNAUTHORIZED, "no such session")
	case err != nil:
		return Session{}, fmt.Errorf("sqlstore: session: %w", err)
	case revoked.Valid:
		return Session{}, herald.Errorf(herald.EUNAUTHORIZED, "the session's API key was revoked")
	case expires <= s.now():
		return Session{}, herald.Errorf(herald.EUNAUTHORIZED, "the session expired")
	}
	sess.ExpiresAt = time.Unix(0, expires).UTC()
	sess.Key.CreatedAt = time.Unix(0, created).UTC()
	return sess, nil
}

// DeleteSession ends the session with this token, if there is one.
func (s *DB) DeleteSession(ctx context.Context, token string) error {
	if _, err := s.ExecContext(ctx, `DELETE FROM ui_sessions WHERE token_hash = ?`, hashKey(token)); err != nil {
		return fmt.Errorf("sqlstore: delete session: %w", err)
	}
	return nil
}
