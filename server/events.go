package server

import (
	"errors"
	"net/http"
	"strings"

	"herald"
	"herald/ingest"
	"herald/otlp"
)

// Body caps, applied after decompression. One event is under
// herald.MaxEventBytes; a batch may hold many (libhoney-go sends at most
// 5 MB); OTLP follows Honeycomb's 20 MiB.
const (
	maxEventBody = herald.MaxEventBytes + 1024
	maxBatchBody = 20 << 20
	maxOTLPBody  = 20 << 20
)

// writeEventError answers an events-endpoint error with the statuses of
// Honeycomb's events API: 400 for anything wrong with the body, 429 with a
// Retry-After when herald is overloaded (libhoney retries it), 503 when it
// is shutting down.
func writeEventError(d Deps, w http.ResponseWriter, r *http.Request, err error) {
	status := 0
	switch herald.ErrorCode(err) {
	case herald.EMALFORMED, herald.EINVALID, herald.ETOOLARGE:
		status = http.StatusBadRequest
	case herald.EUNAVAILABLE:
		w.Header().Set("Retry-After", "1")
		status = http.StatusTooManyRequests
	}
	writeErrorStatus(w, r, d.Logger, err, status)
}

// readBody reads and decompresses a request body of at most limit bytes.
func readBody(d Deps, r *http.Request, limit int64) ([]byte, error) {
	return d.Decompressor.Decompress(http.MaxBytesReader(nil, r.Body, limit), r.Header.Get("Content-Encoding"), limit)
}

// eventStatus is one entry of a batch answer.
type eventStatus struct {
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`
}

func statusOf(err error) eventStatus {
	if err == nil {
		return eventStatus{Status: http.StatusAccepted}
	}
	var he *herald.Error
	if errors.As(err, &he) && (he.Code == herald.EINVALID || he.Code == herald.ETOOLARGE || he.Code == herald.EMALFORMED) {
		return eventStatus{Status: http.StatusBadRequest, Error: he.Message}
	}
	return eventStatus{Status: http.StatusInternalServerError, Error: "internal error"}
}

// handleEvent is POST /1/events/{dataset}: one event; 200 with an empty
// body once it is on disk.
func handleEvent(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(d, r, maxEventBody)
		if err != nil {
			writeEventError(d, w, r, err)
			return
		}
		ev, err := ingest.Single(body, r.Header.Get("Content-Type"), r.Header.Get("X-Honeycomb-Event-Time"),
			r.Header.Get("X-Honeycomb-Samplerate"), d.Clock.Now())
		if err != nil {
			writeEventError(d, w, r, err)
			return
		}
		res, err := d.Events.Write(r.Context(), r.PathValue("dataset"), []herald.Event{ev}, true)
		if err == nil {
			err = res.Errors[0]
		}
		if err != nil {
			writeEventError(d, w, r, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// handleBatch is POST /1/batch/{dataset}: 200 with one status per event,
// by position, once the accepted ones are on disk.
func handleBatch(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(d, r, maxBatchBody)
		if err != nil {
			writeEventError(d, w, r, err)
			return
		}
		events, errs, err := ingest.Batch(body, r.Header.Get("Content-Type"), d.Clock.Now())
		if err != nil {
			writeEventError(d, w, r, err)
			return
		}
		good := make([]herald.Event, 0, len(events))
		at := make([]int, 0, len(events))
		for i, e := range errs {
			if e == nil {
				good = append(good, events[i])
				at = append(at, i)
			}
		}
		if len(good) > 0 {
			res, err := d.Events.Write(r.Context(), r.PathValue("dataset"), good, true)
			if err != nil {
				writeEventError(d, w, r, err)
				return
			}
			for j, e := range res.Errors {
				errs[at[j]] = e
			}
		}
		out := make([]eventStatus, len(errs))
		for i, e := range errs {
			out[i] = statusOf(e)
		}
		encode(w, http.StatusOK, out)
	})
}

// handleOTLP is POST /v1/traces and /v1/logs: OTLP over HTTP, protobuf or
// JSON, answered in the request's encoding.
func handleOTLP(d Deps, logs bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		enc, ok := otlp.ParseContentType(r.Header.Get("Content-Type"))
		if !ok {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusUnsupportedMediaType)
			w.Write([]byte("unsupported content type: use application/x-protobuf, application/protobuf or application/json\n"))
			return
		}
		fail := func(status int, code int32, msg string) {
			w.Header().Set("Content-Type", contentTypeOf(enc))
			if status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "1")
			}
			w.WriteHeader(status)
			w.Write(otlp.Status(enc, code, msg))
		}
		secret := secretOf(r)
		if secret == "" {
			fail(http.StatusUnauthorized, 16, "missing 'x-honeycomb-team' header")
			return
		}
		if _, err := d.Keys.AuthenticateAPIKey(r.Context(), secret); err != nil {
			if herald.ErrorCode(err) == herald.EUNAUTHORIZED {
				fail(http.StatusUnauthorized, 16, "unknown API key - check your credentials")
				return
			}
			d.Logger.ErrorContext(r.Context(), "otlp: authenticate", "error", err)
			fail(http.StatusInternalServerError, 13, "internal error")
			return
		}
		body, err := readBody(d, r, maxOTLPBody)
		if err != nil {
			if herald.ErrorCode(err) == herald.ETOOLARGE {
				fail(http.StatusRequestEntityTooLarge, 8, "request body is too large")
				return
			}
			fail(http.StatusBadRequest, 3, "failed to parse OTLP request body")
			return
		}
		var byDataset map[string][]herald.Event
		if logs {
			byDataset, err = otlp.Logs(body, enc, r.Header.Get("X-Honeycomb-Dataset"), d.Clock.Now())
		} else {
			byDataset, err = otlp.Traces(body, enc)
		}
		if err != nil {
			fail(http.StatusBadRequest, 3, "failed to parse OTLP request body")
			return
		}
		var rejected int64
		var reason string
		for name, events := range byDataset {
			res, err := d.Events.Write(r.Context(), name, events, true)
			switch herald.ErrorCode(err) {
			case "":
			case herald.EUNAVAILABLE:
				fail(http.StatusTooManyRequests, 8, "herald is overloaded; try again shortly")
				return
			case herald.EINVALID:
				rejected += int64(len(events))
				reason = err.Error()
				continue
			default:
				d.Logger.ErrorContext(r.Context(), "otlp: write", "dataset", name, "error", err)
				fail(http.StatusInternalServerError, 13, "internal error")
				return
			}
			for _, e := range res.Errors {
				if e != nil {
					rejected++
					reason = e.Error()
				}
			}
		}
		w.Header().Set("Content-Type", contentTypeOf(enc))
		w.WriteHeader(http.StatusOK)
		if logs {
			w.Write(otlp.LogsResponse(enc, rejected, reason))
		} else {
			w.Write(otlp.TracesResponse(enc, rejected, reason))
		}
	})
}

func contentTypeOf(enc otlp.Encoding) string {
	if enc == otlp.JSON {
		return "application/json"
	}
	return "application/x-protobuf"
}

// datasetRequest is POST /1/datasets.
type datasetRequest struct {
	Name            string `json:"name"`
	Description     string `json:"description"`
	ExpandJSONDepth int    `json:"expand_json_depth"`
	RetentionDays   int    `json:"retention_days"`
}

func handleCreateDataset(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[datasetRequest](r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		ds, created, err := d.Events.CreateDataset(r.Context(), herald.Dataset{Name: strings.TrimSpace(req.Name),
			Description: req.Description, ExpandJSONDepth: req.ExpandJSONDepth, RetentionDays: req.RetentionDays})
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		encode(w, status, ds)
	})
}

func handleListDatasets(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ds, err := d.Events.Datasets(r.Context())
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, ds)
	})
}

func handleGetDataset(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ds, err := d.Events.Dataset(r.Context(), r.PathValue("dataset"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, ds)
	})
}

func handleListColumns(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cols, err := d.Events.Columns(r.Context(), r.PathValue("dataset"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, cols)
	})
}
