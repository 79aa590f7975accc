package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/notify"
	"herald/provider/sendgrid"
	"herald/server"
	"herald/sqlstore"
)

type bundle struct {
	handler http.Handler
	key     string
	ingest  string
}

func setup(t testing.TB) *bundle {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "herald.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	p, err := sendgrid.New(sendgrid.Config{Name: "sendgrid-main", APIKey: "SG.x", From: "a@example.com"})
	require.NoError(t, err)
	svc, err := notify.New(notify.Config{Store: db, Channels: map[string][]herald.Provider{"email": {p}},
		Enqueue: func(context.Context, *sql.Tx, []string) error { return nil }})
	require.NoError(t, err)
	_, key, err := db.CreateAPIKey(ctx, herald.KeyConfiguration, "test")
	require.NoError(t, err)
	_, ingest, err := db.CreateAPIKey(ctx, herald.KeyIngest, "test")
	require.NoError(t, err)
	h := server.NewServer(server.Deps{Logger: slog.New(slog.DiscardHandler), Keys: db, Notifier: svc, Reader: db,
		Metrics: http.NotFoundHandler()})
	return &bundle{handler: h, key: key, ingest: ingest}
}

func (b *bundle) post(key string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/1/notifications", bytes.NewReader(body))
	req.Header.Set("X-Honeycomb-Team", key)
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	return rec
}

func TestIngestKeysCannotNotify(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := b.post(b.ingest, []byte(`{}`))
	require.Equal(t, http.StatusForbidden, rec.Code)
	require.Contains(t, rec.Body.String(), "needs a configuration key")

	req := httptest.NewRequest("GET", "/1/auth", nil)
	req.Header.Set("Authorization", "Bearer "+b.ingest)
	rec = httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	var auth map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &auth))
	require.Equal(t, "ingest", auth["type"])
	require.Equal(t, false, auth["api_key_access"].(map[string]any)["triggers"])
}

func TestBodyLimits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	big := append([]byte(`{"subject":"`), bytes.Repeat([]byte("x"), 1<<20)...)
	require.Equal(t, http.StatusRequestEntityTooLarge, b.post(b.key, append(big, `"}`...)).Code)
	require.Equal(t, http.StatusBadRequest, b.post(b.key, []byte(`{"subject":"a"} {"x":1}`)).Code)
}

// FuzzCreateNotification: whatever the body, the API answers 202, 400, 413
// or 422 in its one error shape, and never panics.
func FuzzCreateNotification(f *testing.F) {
	for _, seed := range []string{
		`{"recipients":[{"type":"email","target":"a@example.com"}],"subject":"s","text":"t","metadata":{"k":"v"}}`,
		`{"recipients":[{"type":"email","target":"a@example.com"}],"subject":"s\n","text":"t"}`,
		`{"recipients":null}`, `[]`, `{`, `{"metadata":{"":""}}`, `{"recipients":[{"type":"email","target":"<a@b>"}]}`,
	} {
		f.Add([]byte(seed))
	}
	b := setup(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := b.post(b.key, body)
		switch rec.Code {
		case http.StatusAccepted:
			return
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		var p map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("error body is not JSON: %q", rec.Body)
		}
		for _, k := range []string{"status", "type", "title", "error"} {
			if _, ok := p[k]; !ok {
				t.Fatalf("error body lacks %q: %s", k, rec.Body)
			}
		}
	})
}
