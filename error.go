package herald

import (
	"errors"
	"fmt"
)

// Error codes, mapped to HTTP statuses in one table at the edge (package
// server).
const (
	EMALFORMED    = "malformed"    // the request body cannot be parsed
	EINVALID      = "invalid"      // the request breaks a rule
	EUNAUTHORIZED = "unauthorized" // no key, or an unknown or revoked key
	EFORBIDDEN    = "forbidden"    // the key may not do this
	ENOTFOUND     = "not_found"    // the resource does not exist
	ECONFLICT     = "conflict"     // the request conflicts with the current state
	ETOOLARGE     = "too_large"    // the body is over a limit
	EUNAVAILABLE  = "unavailable"  // herald cannot serve this now (overload, shutdown)
	EINTERNAL     = "internal"     // a bug or an unexpected failure
)

// FieldError names one field of a request and what is wrong with it.
type FieldError struct {
	Field string `json:"field"`
	// Code is one of "invalid", "missing", "incorrect_type", "already_exists".
	Code        string `json:"code"`
	Description string `json:"description"`
}

// Error is herald's application error: a code for machines, a message for
// people, and the fields at fault.
type Error struct {
	Code    string
	Message string
	Fields  []FieldError
	// Err is the underlying cause, for logs; it is never shown to clients.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error for one field.
func Invalid(field, code, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Code: EINVALID, Message: field + ": " + msg, Fields: []FieldError{{Field: field, Code: code, Description: msg}}}
}

// ErrorCode returns the code of the *Error in err's chain, EINTERNAL for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	}
	return EINTERNAL
}
