package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"replication-manager-pro/config"
	"replication-manager-pro/ipv6"
)

// Strict request input. Every action route declares the parameters it accepts; its query
// string and body are parsed in full before the handler runs, and anything that does not
// parse, is unknown, is given twice or has a value of the wrong kind is refused with a 400
// naming the field. A handler never sees a half-parsed form, so a malformed request can
// never turn into the default action (a switchover to another server, a real run instead of
// a dry run).

// Body limits.
const (
	maxBodyBytes      = 1 << 20 // action routes
	maxLoginBodyBytes = 8 << 10 // /api/login: a user name and a password
	maxFields         = 32      // fields of one query string or body
	maxValueBytes     = 4096    // one field's value
)

type paramKind int

const (
	boolParam     paramKind = iota // true/false, 1/0, yes/no, on/off (any case)
	hostPortParam                  // host:port, IPv6 bracketed
	countParam                     // an integer from 1 to maxCount
)

const maxCount = 10000

// argSpec is one parameter a route accepts, in its query string or its body.
type argSpec struct {
	name string
	kind paramKind
}

// inputError is a refused request: its status and a message naming the field (or the body).
type inputError struct {
	code  int
	field string // "" when about the request as a whole
	msg   string
}

func (e *inputError) Error() string {
	if e.field == "" {
		return e.msg
	}
	return "field " + quoteName(e.field) + ": " + e.msg
}

func badField(field, format string, a ...any) *inputError {
	return &inputError{code: http.StatusBadRequest, field: field, msg: fmt.Sprintf(format, a...)}
}

func badBody(format string, a ...any) *inputError {
	return &inputError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, a...)}
}

// writeInputError answers a refused request.
func writeInputError(w http.ResponseWriter, e *inputError) {
	http.Error(w, "Error in request: "+e.Error(), e.code)
}

// values are the validated parameters of one request, by name.
type values map[string]string

// bool reads a boolean parameter (false when absent); the value was validated.
func (v values) bool(name string) bool {
	b, _ := parseBoolWord(v[name])
	return b
}

// count reads a count parameter, def when absent; the value was validated.
func (v values) count(name string, def int) int {
	s, ok := v[name]
	if !ok {
		return def
	}
	n, _ := strconv.Atoi(s)
	return n
}

func parseBoolWord(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "1", "yes", "on":
		return true, true
	case "false", "0", "no", "off":
		return false, true
	}
	return false, false
}

// readInput parses and validates the query string and the body of r against the route's
// parameters. The body is read in full, at most maxBodyBytes (413 beyond).
func readInput(w http.ResponseWriter, r *http.Request, spec []argSpec) (values, *inputError) {
	fields, ierr := parseForm(r.URL.RawQuery)
	if ierr != nil {
		return nil, ierr
	}
	body, ierr := readBody(w, r, maxBodyBytes)
	if ierr != nil {
		return nil, ierr
	}
	bodyFields, ierr := parseBody(r.Header.Get("Content-Type"), body)
	if ierr != nil {
		return nil, ierr
	}
	for _, f := range bodyFields {
		fields = append(fields, f)
	}
	return validate(fields, spec)
}

// field is one name=value pair as received.
type field struct{ name, value string }

// readBody reads a request body of at most limit bytes: 413 naming the limit beyond.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *inputError) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	tooLarge := &inputError{code: http.StatusRequestEntityTooLarge,
		msg: fmt.Sprintf("body too large: the limit is %d bytes (%s)", limit, humanBytes(limit))}
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, badBody("body unreadable")
	}
	return b, nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// parseBody decodes a body by its Content-Type: a form (also without Content-Type), a JSON
// object (also without Content-Type when it starts with '{'), or multipart/form-data
// without files. Anything else is 415.
func parseBody(contentType string, body []byte) ([]field, *inputError) {
	if len(body) == 0 {
		return nil, nil
	}
	mt, mp := "", map[string]string{}
	if contentType != "" {
		var err error
		mt, mp, err = mime.ParseMediaType(contentType)
		if err != nil {
			return nil, &inputError{code: http.StatusUnsupportedMediaType, msg: "malformed Content-Type"}
		}
	}
	switch {
	case mt == "" && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")),
		mt == "application/json", strings.HasSuffix(mt, "+json"):
		return parseJSONObject(body)
	case mt == "", mt == "application/x-www-form-urlencoded":
		return parseForm(string(body))
	case mt == "multipart/form-data":
		return parseMultipart(body, mp["boundary"])
	}
	return nil, &inputError{code: http.StatusUnsupportedMediaType,
		msg: "unsupported Content-Type " + quoteName(mt) + ": send application/x-www-form-urlencoded or application/json"}
}

// parseForm parses a query string or a form body strictly: a bad percent escape, a ';'
// separator or invalid UTF-8 is an error naming the field (url.ParseQuery's errors do not
// say which field, and http.Request.FormValue drops them).
func parseForm(s string) ([]field, *inputError) {
	if s == "" {
		return nil, nil
	}
	if strings.Count(s, "&") >= maxFields*4 {
		return nil, badBody("too many fields (at most %d)", maxFields)
	}
	var out []field
	for _, pair := range strings.Split(s, "&") {
		if pair == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil || !utf8.ValidString(name) {
			return nil, badField(rawName, "malformed name (bad percent escape or not UTF-8)")
		}
		if strings.Contains(rawName, ";") || strings.Contains(rawValue, ";") {
			return nil, badField(name, "';' is not a separator: use '&' (or escape it as %%3B)")
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, badField(name, "malformed value: %s", escapeReason(err))
		}
		if !utf8.ValidString(value) {
			return nil, badField(name, "value is not valid UTF-8")
		}
		out = append(out, field{name, value})
		if len(out) > maxFields {
			return nil, badBody("too many fields (at most %d)", maxFields)
		}
	}
	return out, nil
}

// escapeReason describes a percent-escape error without repeating the request's bytes
// beyond the escape itself.
func escapeReason(err error) string {
	var ee url.EscapeError
	if errors.As(err, &ee) {
		return "invalid percent escape " + quoteName(string(ee))
	}
	return "invalid percent escape"
}

// parseJSONObject decodes a flat JSON object: string, number, boolean or null values;
// duplicate names, trailing data and invalid UTF-8 are errors.
func parseJSONObject(body []byte) ([]field, *inputError) {
	if !utf8.Valid(body) {
		return nil, badBody("body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, badBody("want a JSON object")
	}
	var out []field
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, badBody("malformed JSON at offset %d", dec.InputOffset())
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, badField(name, "malformed JSON value")
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, badField(name, "malformed JSON value")
		}
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case bool:
			s = strconv.FormatBool(x)
		case float64:
			s = string(bytes.TrimSpace(raw))
		case nil:
			continue // null: as if absent
		default:
			if n, ok := v.(json.Number); ok {
				s = n.String()
				break
			}
			return nil, badField(name, "want a string, a number or a boolean")
		}
		out = append(out, field{name, s})
		if len(out) > maxFields {
			return nil, badBody("too many fields (at most %d)", maxFields)
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, badBody("malformed JSON at offset %d", dec.InputOffset())
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badBody("trailing data after the JSON object")
	}
	return out, nil
}

// parseMultipart reads the fields of a multipart/form-data body; files are refused.
func parseMultipart(body []byte, boundary string) ([]field, *inputError) {
	if boundary == "" {
		return nil, badBody("multipart body without a boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	var out []field
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, badBody("malformed multipart body")
		}
		name := p.FormName()
		if name == "" {
			return nil, badBody("multipart part without a field name")
		}
		if p.FileName() != "" {
			return nil, badField(name, "files are not accepted")
		}
		b, err := io.ReadAll(io.LimitReader(p, maxValueBytes+1))
		if err != nil {
			return nil, badField(name, "malformed multipart part")
		}
		if !utf8.Valid(b) {
			return nil, badField(name, "value is not valid UTF-8")
		}
		out = append(out, field{name, string(b)})
		if len(out) > maxFields {
			return nil, badBody("too many fields (at most %d)", maxFields)
		}
	}
}

// validate checks fields against a route's parameters: each known, given once, with a
// value of its kind.
func validate(fields []field, spec []argSpec) (values, *inputError) {
	out := values{}
	for _, f := range fields {
		p, ok := lookupParam(spec, f.name)
		if !ok {
			return nil, badField(f.name, "unknown field; this route accepts %s", acceptedNames(spec))
		}
		if _, dup := out[p.name]; dup {
			return nil, badField(p.name, "given more than once")
		}
		if len(f.value) > maxValueBytes {
			return nil, badField(p.name, "value too long (at most %d bytes)", maxValueBytes)
		}
		v := strings.TrimSpace(f.value)
		switch p.kind {
		case boolParam:
			if _, ok := parseBoolWord(v); !ok {
				return nil, badField(p.name, "want true or false, got %s", quoteName(v))
			}
		case hostPortParam:
			if _, err := ipv6.ParseHostPort(v, ipv6.DefaultPort); err != nil || v == "" {
				return nil, badField(p.name, "want host:port (IPv6 in brackets), got %s", quoteName(v))
			}
		case countParam:
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxCount {
				return nil, badField(p.name, "want a whole number from 1 to %d, got %s", maxCount, quoteName(v))
			}
			v = strconv.Itoa(n)
		}
		out[p.name] = v
	}
	return out, nil
}

// lookupParam finds a parameter by name; "dryrun" and "dryRun" are one parameter (case
// does not matter, as the original's form reading did not care either for booleans).
func lookupParam(spec []argSpec, name string) (argSpec, bool) {
	for _, p := range spec {
		if strings.EqualFold(p.name, name) {
			return p, true
		}
	}
	return argSpec{}, false
}

func acceptedNames(spec []argSpec) string {
	if len(spec) == 0 {
		return "no field"
	}
	names := make([]string, len(spec))
	for i, p := range spec {
		names[i] = p.name
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// maxNameBytes bounds a name (a field, a user) repeated in an answer or a log line.
const maxNameBytes = 64

// shortName truncates s to maxNameBytes bytes (at a rune boundary), with a marker telling
// the original length: a hostile 60 KB user name costs a log line of ~100 bytes.
func shortName(s string) string {
	if len(s) <= maxNameBytes {
		return s
	}
	cut := maxNameBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("…(truncated, %d bytes)", len(s))
}

// quoteName quotes a name or a value taken from a request for an answer or a log: Go
// syntax (control characters escaped), truncated.
func quoteName(s string) string { return strconv.Quote(shortName(s)) }

// Path values: each variable of a route pattern is checked before anything else runs.
var (
	pathHost    = regexp.MustCompile(`^[A-Za-z0-9._:%\[\]-]{1,255}$`)
	pathPort    = regexp.MustCompile(`^[0-9]{1,5}$`)
	pathServer  = regexp.MustCompile(`^[A-Za-z0-9._:%\[\]-]{1,300}$`)
	pathKeyword = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

// validPathValue checks one path variable; the error names it.
func validPathValue(name, v string) *inputError {
	ok := true
	want := ""
	switch name {
	case "c":
		if err := config.ValidateClusterName(v); err != nil {
			return &inputError{code: http.StatusBadRequest, msg: fmt.Sprintf("invalid cluster %s in the path: %v", quoteName(v), err)}
		}
	case "host":
		ok, want = pathHost.MatchString(v), "a host name or an IP address"
	case "port":
		n, err := strconv.Atoi(v)
		ok, want = pathPort.MatchString(v) && err == nil && n >= 1 && n <= 65535, "a port from 1 to 65535"
	case "s":
		ok, want = pathServer.MatchString(v), "a server id (db<digits>) or host:port"
		name = "server"
	case "value": // settings/actions/set: checked by the key's own rules afterwards
		ok, want = len(v) <= 1024 && utf8.ValidString(v) && !strings.ContainsFunc(v, unicode.IsControl), "at most 1024 printable characters"
	default: // topology, setting
		ok, want = pathKeyword.MatchString(v), "letters, digits, '_', '.', '-'"
	}
	if ok {
		return nil
	}
	return &inputError{code: http.StatusBadRequest, msg: fmt.Sprintf("invalid %s %s in the path: want %s", name, quoteName(v), want)}
}
