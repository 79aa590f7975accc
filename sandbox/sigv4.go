package sandbox

// AWS Signature Version 4 verification for the SES v2 endpoint, built from
// https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
// ("Create a canonical request for Signature Version 4") and checked against
// the aws-sdk-go-v2 signer (aws/signer/v4), which is what signs real clients'
// requests.

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	sigv4Algorithm  = "AWS4-HMAC-SHA256"
	sigv4Terminator = "aws4_request"
	sigv4TimeFormat = "20060102T150405Z"
	sigv4DateFormat = "20060102"
	// sigv4MaxSkew is how far X-Amz-Date may be from the service's clock:
	// "The request reached the service more than 15 minutes after the date
	// stamp on the request ... or the date stamp on the request is more than
	// 15 minutes in the future" (RequestExpired in
	// https://docs.aws.amazon.com/ses/latest/APIReference/CommonErrors.html).
	sigv4MaxSkew = 15 * time.Minute
)

// sigv4Auth is the parsed Authorization header of a SigV4 request.
type sigv4Auth struct {
	AccessKeyID   string
	Date          string // YYYYMMDD from the credential scope
	Region        string
	Service       string
	Terminator    string
	SignedHeaders []string
	Signature     string
}

// scope is the credential scope, date/region/service/aws4_request.
func (a sigv4Auth) scope() string {
	return a.Date + "/" + a.Region + "/" + a.Service + "/" + a.Terminator
}

// sigv4Error is a refused signature, answered with AWS's exception name.
type sigv4Error struct {
	// Type is the X-Amzn-ErrorType: MissingAuthenticationTokenException,
	// IncompleteSignatureException, UnrecognizedClientException or
	// InvalidSignatureException.
	Type    string
	Message string
}

func (e *sigv4Error) Error() string { return e.Type + ": " + e.Message }

func incompleteSignature(format string, args ...any) *sigv4Error {
	return &sigv4Error{Type: "IncompleteSignatureException", Message: fmt.Sprintf(format, args...)}
}

func invalidSignature(format string, args ...any) *sigv4Error {
	return &sigv4Error{Type: "InvalidSignatureException", Message: fmt.Sprintf(format, args...)}
}

// hashedForMessage is how AWS names a malformed Authorization header in an
// error message without echoing it: base64 of its SHA-256.
func hashedForMessage(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// parseSigV4Authorization parses
//
//	AWS4-HMAC-SHA256 Credential=AKID/20261124/us-east-1/ses/aws4_request, SignedHeaders=host;x-amz-date, Signature=hex
//
// It never fails on the credential's values, only on the header's shape;
// the caller checks the scope against what it expects.
func parseSigV4Authorization(h string) (sigv4Auth, *sigv4Error) {
	var a sigv4Auth
	alg, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if alg != sigv4Algorithm {
		return a, incompleteSignature("Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. (Hashed with SHA-256 and encoded with Base64) Authorization=%s", hashedForMessage(h))
	}
	seen := map[string]bool{}
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return a, incompleteSignature("Invalid key=value pair (missing equal-sign) in Authorization header (hashed with SHA-256 and encoded with Base64): '%s'.", hashedForMessage(part))
		}
		k = strings.TrimSpace(k)
		if seen[k] {
			return a, incompleteSignature("Duplicate parameter '%s' in Authorization header.", k)
		}
		seen[k] = true
		switch k {
		case "Credential":
			fields := strings.Split(v, "/")
			if len(fields) != 5 {
				return a, incompleteSignature("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", hashedForMessage(v))
			}
			a.AccessKeyID, a.Date, a.Region, a.Service, a.Terminator = fields[0], fields[1], fields[2], fields[3], fields[4]
		case "SignedHeaders":
			if v == "" {
				return a, incompleteSignature("Authorization header requires 'SignedHeaders' parameter.")
			}
			a.SignedHeaders = strings.Split(v, ";")
		case "Signature":
			a.Signature = v
		}
	}
	var missing []string
	if !seen["Credential"] {
		missing = append(missing, "Authorization header requires 'Credential' parameter.")
	}
	if !seen["Signature"] || a.Signature == "" {
		missing = append(missing, "Authorization header requires 'Signature' parameter.")
	}
	if !seen["SignedHeaders"] {
		missing = append(missing, "Authorization header requires 'SignedHeaders' parameter.")
	}
	if len(missing) > 0 {
		return a, incompleteSignature("%s (Hashed with SHA-256 and encoded with Base64) Authorization=%s", strings.Join(missing, " "), hashedForMessage(h))
	}
	return a, nil
}

// sigv4Verifier checks SigV4 requests signed for one service with one key.
type sigv4Verifier struct {
	accessKeyID string
	secret      string
	region      string
	service     string
}

// verify checks r's SigV4 signature over body at now. It returns the access
// key id on success, or the exception AWS answers.
func (v sigv4Verifier) verify(r *http.Request, body []byte, now time.Time) (string, *sigv4Error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if r.URL.Query().Get("X-Amz-Signature") != "" {
			return "", incompleteSignature("Presigned URLs are not supported for this operation.")
		}
		return "", &sigv4Error{Type: "MissingAuthenticationTokenException", Message: "Missing Authentication Token"}
	}
	a, err := parseSigV4Authorization(h)
	if err != nil {
		return "", err
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		return "", incompleteSignature("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. (Hashed with SHA-256 and encoded with Base64) Authorization=%s", hashedForMessage(h))
	}
	signedAt, perr := time.Parse(sigv4TimeFormat, amzDate)
	if perr != nil {
		return "", incompleteSignature("Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", amzDate)
	}
	if subtle.ConstantTimeCompare([]byte(a.AccessKeyID), []byte(v.accessKeyID)) != 1 {
		return "", &sigv4Error{Type: "UnrecognizedClientException", Message: "The security token included in the request is invalid."}
	}
	switch {
	case a.Terminator != sigv4Terminator:
		return "", invalidSignature("Credential should be scoped with a valid terminator: 'aws4_request', not '%s'. ", a.Terminator)
	case a.Service != v.service:
		return "", invalidSignature("Credential should be scoped to correct service: '%s'. ", v.service)
	case a.Region != v.region:
		return "", invalidSignature("Credential should be scoped to a valid region. ")
	case a.Date != amzDate[:8]:
		return "", invalidSignature("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", a.Date, amzDate[:8], "X-Amz-Date")
	case !slices.Contains(a.SignedHeaders, "host"):
		return "", invalidSignature("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if signedAt.Before(now.Add(-sigv4MaxSkew)) {
		return "", invalidSignature("Signature expired: %s is now earlier than %s (%s - 15 min.)",
			amzDate, now.Add(-sigv4MaxSkew).UTC().Format(sigv4TimeFormat), now.UTC().Format(sigv4TimeFormat))
	}
	if signedAt.After(now.Add(sigv4MaxSkew)) {
		return "", invalidSignature("Signature not yet current: %s is still later than %s (%s + 15 min.)",
			amzDate, now.Add(sigv4MaxSkew).UTC().Format(sigv4TimeFormat), now.UTC().Format(sigv4TimeFormat))
	}

	canonical := canonicalRequest(r, a.SignedHeaders, body, false)
	sum := sha256.Sum256([]byte(canonical))
	stringToSign := sigv4Algorithm + "\n" + amzDate + "\n" + a.scope() + "\n" + hex.EncodeToString(sum[:])
	want := hex.EncodeToString(hmacSHA256(sigv4SigningKey(v.secret, a.Date, a.Region, a.Service), stringToSign))
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(a.Signature)), []byte(want)) != 1 {
		// AWS explains what it signed. Neither string holds the secret; a
		// signed session token is shown redacted.
		return "", invalidSignature("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'%s'\n\nThe String-to-Sign should have been\n'%s'\n", canonicalRequest(r, a.SignedHeaders, body, true), stringToSign)
	}
	return a.AccessKeyID, nil
}

// canonicalRequest is the SigV4 canonical request of r:
//
//	Method \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n HashedPayload
//
// The payload hash is always computed from the body that arrived, so a
// client cannot vouch for a body it did not sign through
// X-Amz-Content-Sha256.
//
// With redact, the session token's value is replaced, for error messages.
func canonicalRequest(r *http.Request, signed []string, body []byte, redact bool) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r.URL))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.Query()))
	b.WriteByte('\n')
	for _, name := range signed {
		b.WriteString(name)
		b.WriteByte(':')
		if redact && name == "x-amz-security-token" {
			b.WriteString("<redacted>")
		} else {
			b.WriteString(canonicalHeaderValue(r, name))
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	sum := sha256.Sum256(body)
	b.WriteString(hex.EncodeToString(sum[:]))
	return b.String()
}

// canonicalURI URI-encodes the already escaped path once more, as every
// service but S3 expects.
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	return sigv4Escape(p, false)
}

// canonicalQuery sorts parameters by key, then value, each URI-encoded.
func canonicalQuery(q url.Values) string {
	type kv struct{ k, v string }
	var params []kv
	for k, vs := range q {
		for _, v := range vs {
			params = append(params, kv{sigv4Escape(k, true), sigv4Escape(v, true)})
		}
	}
	slices.SortFunc(params, func(a, b kv) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	parts := make([]string, len(params))
	for i, p := range params {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// canonicalHeaderValue is the trimmed value of header name (lower case),
// inner runs of spaces collapsed, multiple values joined by commas.
func canonicalHeaderValue(r *http.Request, name string) string {
	var values []string
	switch name {
	case "host":
		values = []string{r.Host}
	case "content-length":
		values = r.Header.Values("Content-Length")
		if len(values) == 0 && r.ContentLength >= 0 {
			values = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	default:
		values = r.Header.Values(name)
	}
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = collapseSpaces(strings.TrimSpace(v))
	}
	return strings.Join(out, ",")
}

func collapseSpaces(s string) string {
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	space := false
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteByte(s[i])
	}
	return b.String()
}

// sigv4Escape percent-encodes every byte but the unreserved characters
// A-Z a-z 0-9 - . _ ~ (and '/' unless encodeSlash), with upper-case hex.
func sigv4Escape(s string, encodeSlash bool) string {
	const hexdigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexdigits[c>>4])
			b.WriteByte(hexdigits[c&15])
		}
	}
	return b.String()
}

// sigv4SigningKey derives the key: HMAC chain over date, region, service
// and the terminator, starting from "AWS4" + secret.
func sigv4SigningKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, sigv4Terminator)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
