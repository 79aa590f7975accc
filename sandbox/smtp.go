package sandbox

// The SMTP partner: a submission server on the go-smtp library with
// STARTTLS and AUTH, answering as RFC 5321 servers do (reference/providers.md
// §5). It accepts into the same mailbox and takes the same faults as the
// HTTP partners, mapped to SMTP replies (docs/sandbox.md, "SMTP").

import (
	"bytes"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTP limits the sandbox advertises and enforces.
const (
	smtpMaxMessage    = 25 << 20
	smtpMaxRecipients = 1000
	smtpMaxLine       = 1000 // 998 characters and CRLF (RFC 5322 §2.1.1)
)

// ServeSMTP serves the SMTP partner on l until the returned Closer is closed.
func (s *Server) ServeSMTP(l net.Listener) io.Closer {
	srv := smtp.NewServer(&smtpBackend{s: s})
	srv.Domain = "smtp.sandbox.herald"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{s.keys.tls}, MinVersion: tls.VersionTLS12}
	srv.MaxMessageBytes = smtpMaxMessage
	srv.MaxRecipients = smtpMaxRecipients
	srv.MaxLineLength = smtpMaxLine
	srv.ReadTimeout = 5 * time.Minute
	srv.WriteTimeout = 5 * time.Minute
	srv.ErrorLog = smtpLog{s}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			s.log.Error("sandbox smtp server stopped", "error", err)
		}
	}()
	return srv
}

type smtpLog struct{ s *Server }

func (l smtpLog) Printf(format string, v ...any) {
	l.s.log.Debug("sandbox smtp", "detail", strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (l smtpLog) Println(v ...any) {
	l.s.log.Debug("sandbox smtp", "detail", strings.TrimSpace(fmt.Sprintln(v...)))
}

type smtpBackend struct{ s *Server }

func (b *smtpBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &smtpSession{s: b.s, conn: c}, nil
}

// smtpSession is one client connection.
type smtpSession struct {
	s    *Server
	conn *smtp.Conn
	user string
	from string
	to   []string
	fx   *applied
}

func smtpErr(code int, enhanced smtp.EnhancedCode, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: msg}
}

// reply counts an answer in the metrics and returns err.
func (ss *smtpSession) reply(err *smtp.SMTPError) error {
	code := "250"
	if err != nil {
		code = strconv.Itoa(err.Code)
	}
	ss.s.metrics.requests.WithLabelValues(string(SMTP), code).Inc()
	if err == nil {
		return nil
	}
	return err
}

func (ss *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	check := func(username, password string) error {
		cr := ss.s.cfg.Credentials
		if subtle.ConstantTimeCompare([]byte(username), []byte(cr.SMTPUsername)) != 1 ||
			subtle.ConstantTimeCompare([]byte(password), []byte(cr.SMTPPassword)) != 1 {
			return ss.reply(smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Authentication credentials invalid"))
		}
		ss.user = username
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Identity does not match the user")
			}
			return check(username, password)
		}), nil
	case sasl.Login:
		return newLoginServer(check), nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.user == "" {
		return ss.reply(smtpErr(530, smtp.EnhancedCode{5, 7, 0}, "Authentication required"))
	}
	ss.fx = ss.s.faults.roll(SMTP, ss.s.float64)
	for _, f := range ss.fx.faults {
		if f.Kind != FaultRejectMetadata {
			ss.s.metrics.faults.WithLabelValues(string(SMTP), string(f.Kind)).Inc()
		}
	}
	if f, ok := ss.fx.has(FaultStatus); ok {
		return ss.reply(smtpStatus(f.Status))
	}
	if v := ss.s.limits.take(SMTP, ss.user); !v.ok {
		return ss.reply(smtpErr(454, smtp.EnhancedCode{4, 7, 0}, "Throttling failure: Maximum sending rate exceeded."))
	}
	if !ss.s.senderVerified(from) {
		return ss.reply(smtpErr(553, smtp.EnhancedCode{5, 7, 1}, "Sender address rejected: not owned by user "+ss.user))
	}
	ss.from = from
	return ss.reply(nil)
}

// smtpStatus turns a status fault into an SMTP reply: a valid SMTP code is
// used as it is; an HTTP 429 becomes 451 4.7.1.
func smtpStatus(status int) *smtp.SMTPError {
	switch {
	case status == 429:
		return smtpErr(451, smtp.EnhancedCode{4, 7, 1}, "Rate limit exceeded, try again later")
	case status == 421:
		return smtpErr(421, smtp.EnhancedCode{4, 3, 0}, "Service not available, closing transmission channel")
	case status < 500:
		return smtpErr(status, smtp.EnhancedCode{4, 3, 0}, "Requested action not taken: try again later")
	}
	return smtpErr(status, smtp.EnhancedCode{5, 3, 0}, "Requested action not taken")
}

// Rcpt answers per recipient. By the sandbox's convention a local part
// starting with "reject" is refused permanently (550 5.1.1) and one
// starting with "tempfail" temporarily (452 4.2.2), so that clients' handling
// of a refused recipient can be tested.
func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	local := strings.ToLower(to)
	if i := strings.IndexByte(local, '@'); i >= 0 {
		local = local[:i]
	}
	switch {
	case !validEmail(to):
		return ss.reply(smtpErr(553, smtp.EnhancedCode{5, 1, 3}, "Recipient address syntax error"))
	case strings.HasPrefix(local, "reject"):
		return ss.reply(smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "Recipient address rejected: User unknown"))
	case strings.HasPrefix(local, "tempfail"):
		return ss.reply(smtpErr(452, smtp.EnhancedCode{4, 2, 2}, "Mailbox full, try again later"))
	}
	ss.to = append(ss.to, to)
	return ss.reply(nil)
}

func (ss *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	switch {
	case errors.Is(err, smtp.ErrDataTooLarge):
		return ss.reply(smtpErr(552, smtp.EnhancedCode{5, 3, 4}, "Message size exceeds fixed limit"))
	case err != nil:
		return ss.reply(smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "Message line too long or malformed: lines are limited to 998 characters (RFC 5322 2.1.1)"))
	}
	if f, ok := ss.fx.has(FaultLatency); ok {
		time.Sleep(time.Duration(f.Delay))
	}
	if f, ok := ss.fx.has(FaultStall); ok {
		d := time.Duration(f.Delay)
		if d == 0 {
			d = 24 * time.Hour
		}
		ss.waitOrClose(d)
		ss.conn.Close()
		return ss.reply(smtpErr(421, smtp.EnhancedCode{4, 4, 2}, "Timeout"))
	}
	m, perr := parseSMTPMessage(raw)
	if perr != nil {
		return ss.reply(perr)
	}
	if key, _, bad := ss.fx.rejectsMetadata(m.Metadata); bad {
		return ss.reply(smtpErr(550, smtp.EnhancedCode{5, 7, 1}, "Message rejected: metadata header field "+key+" is not acceptable"))
	}
	m.Partner, m.ReceivedAt = SMTP, ss.s.clock.Now()
	m.From = ss.from
	m.To, m.Cc, m.Bcc = ss.to, nil, nil // the envelope decides who gets it
	m.MessageID = strings.ToUpper(ss.s.randomString(12, "0123456789abcdef"))
	m.Fate = FateAccepted
	switch {
	case hasFault(ss.fx, FaultNeverConfirm):
		m.Fate = FateUnconfirmed
	case hasFault(ss.fx, FaultAcceptThenFail):
		f, _ := ss.fx.has(FaultAcceptThenFail)
		m.Fate = f.Fate
		if m.Fate == "" {
			m.Fate = FateBounced
		}
	}
	ss.s.mailbox.add(m)
	ss.s.metrics.accepted.WithLabelValues(string(SMTP)).Inc()
	if hasFault(ss.fx, FaultDropConnection) {
		ss.conn.Close() // taken, and no answer: the client cannot know
		ss.s.metrics.requests.WithLabelValues(string(SMTP), "dropped").Inc()
		return errors.New("connection dropped by fault")
	}
	// go-smtp answers a successful DATA with its own text; a 250 "error"
	// carries the queue id the way Postfix words it.
	ss.s.metrics.requests.WithLabelValues(string(SMTP), "250").Inc()
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok: queued as " + m.MessageID}
}

// waitOrClose waits d, or until the client goes away.
func (ss *smtpSession) waitOrClose(d time.Duration) {
	conn := ss.conn.Conn()
	conn.SetReadDeadline(time.Now().Add(d))
	io.Copy(io.Discard, conn)
}

func (ss *smtpSession) Reset() {
	ss.from, ss.to, ss.fx = "", nil, nil
}

func (ss *smtpSession) Logout() error { return nil }

// parseSMTPMessage reads an RFC 5322 message: headers, subject, text and
// HTML bodies, and the partner metadata headers of reference/providers.md
// §5.1 (X-SMTPAPI unique_args, X-PM-Metadata-*, X-Mailgun-Variables,
// X-SES-MESSAGE-TAGS).
func parseSMTPMessage(raw []byte) (*Message, *smtp.SMTPError) {
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if len(bytes.TrimSuffix(line, []byte("\r"))) > smtpMaxLine-2 {
			return nil, smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "Message line too long: lines are limited to 998 characters (RFC 5322 2.1.1)")
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "Message headers could not be parsed")
	}
	dec := new(mime.WordDecoder)
	m := &Message{Headers: map[string]string{}, Metadata: map[string]string{}}
	for _, h := range rawHeaders(raw) {
		v := h.value
		if d, err := dec.DecodeHeader(v); err == nil {
			v = d
		}
		if old, dup := m.Headers[h.name]; dup {
			v = old + ", " + v
		}
		m.Headers[h.name] = v
	}
	m.Subject = m.Headers[headerName(m.Headers, "Subject")]
	for name, v := range m.Headers {
		switch upper := strings.ToUpper(name); {
		case strings.HasPrefix(upper, "X-PM-METADATA-"):
			m.Metadata[name[len("X-PM-Metadata-"):]] = v
		case upper == "X-SMTPAPI":
			var api struct {
				UniqueArgs map[string]any `json:"unique_args"`
			}
			if json.Unmarshal([]byte(v), &api) == nil {
				for k, val := range api.UniqueArgs {
					m.Metadata[k] = jsonString(val)
				}
			}
		case upper == "X-MAILGUN-VARIABLES":
			var vars map[string]any
			if json.Unmarshal([]byte(v), &vars) == nil {
				for k, val := range vars {
					m.Metadata[k] = jsonString(val)
				}
			}
		case upper == "X-SES-MESSAGE-TAGS":
			for _, pair := range strings.Split(v, ",") {
				if k, val, ok := strings.Cut(strings.TrimSpace(pair), "="); ok {
					m.Metadata[strings.TrimSpace(k)] = strings.TrimSpace(val)
				}
			}
		}
	}
	if len(m.Metadata) == 0 {
		m.Metadata = nil
	}
	m.Text, m.HTML = readBody(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, 0)
	return m, nil
}

func jsonString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// readBody returns the text and HTML parts of a body, decoding multipart
// and transfer encodings; depth bounds nested multiparts.
func readBody(ctype, encoding string, body io.Reader, depth int) (text, html string) {
	media, params, err := mime.ParseMediaType(ctype)
	if ctype == "" || err != nil {
		media = "text/plain"
	}
	if strings.HasPrefix(media, "multipart/") && depth < 5 {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if err != nil {
				return text, html
			}
			t, h := readBody(part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"), part, depth+1)
			if text == "" {
				text = t
			}
			if html == "" {
				html = h
			}
		}
	}
	var r io.Reader = body
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, newlineStripper{body})
	}
	b, _ := io.ReadAll(io.LimitReader(r, smtpMaxMessage))
	switch media {
	case "text/plain":
		return string(b), ""
	case "text/html":
		return "", string(b)
	}
	return "", ""
}

// newlineStripper drops CR and LF, which base64 bodies are wrapped with.
type newlineStripper struct{ r io.Reader }

func (n newlineStripper) Read(p []byte) (int, error) {
	for {
		c, err := n.r.Read(p)
		j := 0
		for _, b := range p[:c] {
			if b != '\r' && b != '\n' {
				p[j] = b
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// loginServer is the server side of AUTH LOGIN: it asks for the user name
// and the password, base64 prompts being added by the SMTP library.
type loginServer struct {
	check    func(username, password string) error
	username string
	step     int
}

func newLoginServer(check func(username, password string) error) sasl.Server {
	return &loginServer{check: check}
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if response != nil { // the initial response is the user name
			l.username = string(response)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.username = string(response)
		l.step++
		return []byte("Password:"), false, nil
	}
	return nil, true, l.check(l.username, string(response))
}

type rawHeader struct{ name, value string }

// rawHeaders returns the message's header fields with their names as
// written (net/mail canonicalizes them, and metadata keys keep their case),
// unfolding continuation lines.
func rawHeaders(raw []byte) []rawHeader {
	var out []rawHeader
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			out[len(out)-1].value += " " + strings.TrimSpace(line)
			continue
		}
		if name, value, ok := strings.Cut(line, ":"); ok {
			out = append(out, rawHeader{strings.TrimSpace(name), strings.TrimSpace(value)})
		}
	}
	return out
}

// headerName returns the key of h that equals name case-insensitively.
func headerName(h map[string]string, name string) string {
	for k := range h {
		if strings.EqualFold(k, name) {
			return k
		}
	}
	return name
}
