package telemetry_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"herald/telemetry"
)

func TestLogsCarryTheTraceAndSpan(t *testing.T) {
	tr, err := telemetry.Setup(context.Background(), "herald-test", "dev", func(string) string { return "" })
	require.NoError(t, err)
	defer tr.Shutdown(context.Background())
	require.False(t, tr.Exporting)

	var buf bytes.Buffer
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "x")
	ctx, span := tr.Provider.Tracer("t").Start(context.Background(), "op")
	log.InfoContext(ctx, "inside")
	span.End()
	log.Info("outside")
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	require.Len(t, lines, 2)
	require.Contains(t, string(lines[0]), `"trace_id":"`+span.SpanContext().TraceID().String()+`"`)
	require.Contains(t, string(lines[0]), `"span_id":"`+span.SpanContext().SpanID().String()+`"`)
	require.NotContains(t, string(lines[1]), "trace_id")
}
