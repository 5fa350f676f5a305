package slapos

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// RequestSchema is the JSON Schema of a repman instance request's parameters (draft
// 2020-12). It is the single source of the parameters' defaults.
//
//go:embed request.schema.json
var RequestSchema []byte

const schemaURL = "https://replication-manager-pro.invalid/slapos/request.schema.json"

// Request is a validated repman instance request with every default applied.
type Request struct {
	TagList             []string `json:"tag-list"`
	Autorejoin          bool     `json:"autorejoin"`
	Autoseed            bool     `json:"autoseed"`
	MailFrom            string   `json:"mail-from"`
	MailSMTPAddr        string   `json:"mail-smtp-addr"`
	MailSMTPPort        any      `json:"mail-smtp-port"` // integer or digits, as SlapOS passes it
	MailSMTPUser        string   `json:"mail-smtp-user"`
	MailSMTPPassword    string   `json:"mail-smtp-password"`
	MailTo              string   `json:"mail-to"`
	HTTPSessionLifetime int      `json:"http-session-lifetime"`
	HTTPRefreshInterval int      `json:"http-refresh-interval"`
	RequireSSL          bool     `json:"require-ssl"`
	// LegacyAnonymousRoutes is rendered as slapos-legacy-anonymous-routes.
	LegacyAnonymousRoutes bool `json:"slapos-legacy-anonymous-routes"`

	Clusters []ClusterRequest `json:"-"` // sorted by name
	// SharedInstances is slave_instance_list: the tenants' databases (tenants.go).
	SharedInstances []SharedInstance `json:"-"`
	// ClusterDictGiven tells whether the request names repman-cluster-dict (Clusters is
	// otherwise the schema's default cluster1): only then may a render remove the generated
	// files of clusters it does not name.
	ClusterDictGiven bool `json:"-"`
}

// ClusterRequest is one entry of repman-cluster-dict.
type ClusterRequest struct {
	Name string `json:"-"`
	// ComputerGUIDs maps a database index to its -sla-<i>-computer_guid.
	ComputerGUIDs map[int]string `json:"-"`

	DatabaseAmount int      `json:"database-amount"`
	Tags           []string `json:"tags"`
	// TagList is SlapOS's own name of the database tags of a cluster; it wins over Tags.
	TagList []string `json:"tag-list"`
	// DBPreferedMaster names the preferred master among the cluster's databases (their
	// address, host:port); "" is the first database.
	DBPreferedMaster    string   `json:"db-prefered-master"`
	ProxyTags           []string `json:"proxy-tags"`
	ProxySQLUser        string   `json:"proxysql-user"`
	LogicalBackupCron   string   `json:"logical-backup-cron"`
	PhysicalBackupCron  string   `json:"physical-backup-cron"`
	ProxyCPUCores       int      `json:"proxy-cpu-cores"`
	ProxyMemory         int      `json:"proxy-memory"`
	DBCPUCores          int      `json:"db-cpu-cores"`
	DBDiskIOPS          int      `json:"db-disk-iops"`
	DBMemory            int      `json:"db-memory"`
	DBMemorySharedPct   []string `json:"db-memory-shared-pct"`
	DBMemoryThreadedPct []string `json:"db-memory-threaded-pct"`
	InnoDBFilePerTable  int      `json:"innodb-file-per-table"`
	UseIPv6             bool     `json:"use-ipv6"`
	Autorejoin          bool     `json:"autorejoin"`
	Autoseed            bool     `json:"autoseed"`

	FailoverMode                          string `json:"failover-mode"`
	FailoverLimit                         int    `json:"failover-limit"`
	FailoverFalsePositiveHeartbeat        bool   `json:"failover-falsepositive-heartbeat"`
	FailoverFalsePositiveHeartbeatTimeout int    `json:"failover-falsepositive-heartbeat-timeout"`
	FailoverFalsePositivePingCounter      int    `json:"failover-falsepositive-ping-counter"`
	FailoverMaxSlaveDelay                 int    `json:"failover-max-slave-delay"`
	FailoverReadonlyState                 bool   `json:"failover-readonly-state"`
	FailoverRestartUnsafe                 bool   `json:"failover-restart-unsafe"`
	FailoverTimeLimit                     int    `json:"failover-time-limit"`
	SwitchoverAtEqualGTID                 bool   `json:"switchover-at-equal-gtid"`
	SwitchoverSlaveWaitCatch              bool   `json:"switchover-slave-wait-catch"`
	SwitchoverWaitKill                    int    `json:"switchover-wait-kill"`
	SwitchoverWaitTrx                     int    `json:"switchover-wait-trx"`
	SwitchoverWaitWriteQuery              int    `json:"switchover-wait-write-query"`
}

// RequestError lists every problem of a request, one line each naming the parameter, e.g.
// "cluster1: database-amount: must be >= 2, got 1".
type RequestError struct{ Lines []string }

func (e *RequestError) Error() string { return strings.Join(e.Lines, "\n") }

var slaKey = regexp.MustCompile(`^-sla-([0-9]+)-computer_guid$`)

var compiled = func() *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(RequestSchema))
	if err != nil {
		panic("slapos: request schema: " + err.Error())
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaURL, doc); err != nil {
		panic("slapos: request schema: " + err.Error())
	}
	return c.MustCompile(schemaURL)
}()

// schemaDoc is the schema as plain JSON, read for its defaults.
var schemaDoc = func() map[string]any {
	var m map[string]any
	if err := json.Unmarshal(RequestSchema, &m); err != nil {
		panic("slapos: request schema: " + err.Error())
	}
	return m
}()

// SerialisedKey is the one key of parameters sent by SlapOS' request.serialised recipe:
// its value is a string holding the JSON text of the real parameters.
const SerialisedKey = "_"

// ParseRequest validates a request's parameters (the JSON object SlapOS hands the instance)
// against RequestSchema and returns them with defaults applied. The document must be one
// JSON object in valid UTF-8 without duplicate keys. Parameters serialised by SlapOS'
// request.serialised recipe ({"_": "<JSON text>"}) are decoded first. An unknown top-level
// parameter close to a known one is an error with a suggestion; another unknown top-level
// parameter is a warning (SlapOS may pass parameters of its own). Problems come back as a
// *RequestError, one line each. warnings are oddities that do not stop the rendering.
func ParseRequest(data []byte) (req *Request, warnings []string, err error) {
	return parseRequest(data, false)
}

func parseRequest(data []byte, serialised bool) (req *Request, warnings []string, err error) {
	if err := checkJSON(data); err != nil {
		return nil, nil, &RequestError{Lines: []string{err.Error()}}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, nil, &RequestError{Lines: []string{"not a JSON object: " + err.Error()}}
	}
	if raw, ok := top[SerialisedKey]; ok {
		if serialised {
			return nil, nil, &RequestError{Lines: []string{SerialisedKey + ": unknown parameter (serialised parameters do not nest)"}}
		}
		return parseSerialised(top, raw)
	}
	shared, err := takeSharedInstances(top)
	if err != nil {
		return nil, nil, err
	}
	props := schemaDoc["properties"].(map[string]any)
	var lines []string
	for k := range top {
		if _, ok := props[k]; ok {
			continue
		}
		if s := suggest(k, propNames(props)); s != "" {
			lines = append(lines, fmt.Sprintf("%s: unknown parameter; did you mean %q?", keyName(k), s))
		} else {
			warnings = append(warnings, fmt.Sprintf("%s: unknown parameter, ignored", keyName(k)))
		}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, nil, &RequestError{Lines: []string{"not a JSON document: " + err.Error()}}
	}
	if err := compiled.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return nil, nil, fmt.Errorf("validate: %w", err)
		}
		lines = append(lines, validationLines(ve)...)
	}
	if len(lines) > 0 {
		sort.Strings(lines)
		return nil, nil, &RequestError{Lines: lines}
	}
	clusterProps := schemaDoc["$defs"].(map[string]any)["cluster"].(map[string]any)["properties"].(map[string]any)

	topVals := withDefaults(top, props)
	req = &Request{}
	if err := decodeKnown(topVals, props, req); err != nil {
		return nil, nil, err
	}
	_, req.ClusterDictGiven = top["repman-cluster-dict"]
	var dict map[string]json.RawMessage
	if err := json.Unmarshal(topVals["repman-cluster-dict"], &dict); err != nil {
		return nil, nil, fmt.Errorf("repman-cluster-dict: %w", err)
	}
	names := make([]string, 0, len(dict))
	for n := range dict {
		names = append(names, n)
	}
	sort.Strings(names)
	seen := map[string]string{}
	for _, name := range names {
		if prev, dup := seen[strings.ToLower(name)]; dup {
			lines = append(lines, fmt.Sprintf("%s: cluster name differs from %s only by case", name, prev))
			continue
		}
		seen[strings.ToLower(name)] = name
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(dict[name], &raw); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		cr := ClusterRequest{Name: name, ComputerGUIDs: map[int]string{}}
		slaKeys := map[int]string{}
		for k, v := range raw {
			if m := slaKey.FindStringSubmatch(k); m != nil {
				delete(raw, k)
				i, err := strconv.Atoi(m[1])
				if err != nil || i > 1000 {
					warnings = append(warnings, fmt.Sprintf("%s: %s: ignored, no such database", name, keyName(k)))
					continue
				}
				if prev, dup := slaKeys[i]; dup {
					a, b := prev, k
					if b < a {
						a, b = b, a
					}
					lines = append(lines, fmt.Sprintf("%s: %s and %s name the same database", name, a, b))
					continue
				}
				slaKeys[i] = k
				var s string
				_ = json.Unmarshal(v, &s)
				cr.ComputerGUIDs[i] = s
			}
		}
		if err := decodeKnown(withDefaults(raw, clusterProps), clusterProps, &cr); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		for i, g := range cr.ComputerGUIDs {
			if g != "" && i >= cr.DatabaseAmount {
				warnings = append(warnings, fmt.Sprintf("%s: -sla-%d-computer_guid: ignored, database-amount is %d", name, i, cr.DatabaseAmount))
			}
		}
		req.Clusters = append(req.Clusters, cr)
	}
	if len(lines) > 0 {
		sort.Strings(lines)
		return nil, nil, &RequestError{Lines: lines}
	}
	req.SharedInstances = shared
	sort.Strings(warnings)
	return req, warnings, nil
}

// parseSerialised decodes {"_": "<JSON text>"}: the key must come alone and hold a string.
// Problems and warnings are prefixed with "_ (serialised parameters): ".
func parseSerialised(top map[string]json.RawMessage, raw json.RawMessage) (*Request, []string, error) {
	if len(top) > 1 {
		var others []string
		for k := range top {
			if k != SerialisedKey {
				others = append(others, strconv.Quote(truncate(k, 64)))
			}
		}
		sort.Strings(others)
		return nil, nil, &RequestError{Lines: []string{SerialisedKey + ": serialised parameters come alone, found also " + strings.Join(others, ", ")}}
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return nil, nil, &RequestError{Lines: []string{SerialisedKey + ": must be a string holding the JSON parameters (SlapOS' request.serialised)"}}
	}
	req, warnings, err := parseRequest([]byte(text), true)
	const prefix = SerialisedKey + " (serialised parameters): "
	for i := range warnings {
		warnings[i] = prefix + warnings[i]
	}
	var re *RequestError
	if errors.As(err, &re) {
		lines := make([]string, len(re.Lines))
		for i, l := range re.Lines {
			lines[i] = prefix + l
		}
		return nil, nil, &RequestError{Lines: lines}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s%w", prefix, err)
	}
	return req, warnings, nil
}

func propNames(props map[string]any) []string {
	out := make([]string, 0, len(props))
	for k := range props {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// withDefaults returns vals plus the schema default of every property vals lacks.
func withDefaults(vals map[string]json.RawMessage, props map[string]any) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for k, v := range vals {
		out[k] = v
	}
	for k, p := range props {
		if _, ok := out[k]; ok {
			continue
		}
		if d, ok := p.(map[string]any)["default"]; ok {
			b, _ := json.Marshal(d)
			out[k] = b
		}
	}
	return out
}

// decodeKnown decodes the schema's properties of vals into dst; a property the Go type does
// not know is a programming error (schema and struct drifted), reported as such.
func decodeKnown(vals map[string]json.RawMessage, props map[string]any, dst any) error {
	known := map[string]json.RawMessage{}
	for k := range props {
		if v, ok := vals[k]; ok && k != "repman-cluster-dict" {
			known[k] = v
		}
	}
	b, err := json.Marshal(known)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("decode parameters (schema and code disagree): %w", err)
	}
	return nil
}

var printer = message.NewPrinter(language.English)

// clusterParamNames are the parameters of a cluster, for suggestions.
var clusterParamNames = propNames(schemaDoc["$defs"].(map[string]any)["cluster"].(map[string]any)["properties"].(map[string]any))

// validationLines flattens a validation error into one line per failed leaf.
func validationLines(ve *jsonschema.ValidationError) []string {
	var lines []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if _, ok := e.ErrorKind.(*kind.PropertyNames); ok || len(e.Causes) == 0 {
			lines = append(lines, leafLines(e)...)
			return
		}
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		lines = append(lines, leafLines(e)...)
	}
	walk(ve)
	sort.Strings(lines)
	out := lines[:0]
	for i, l := range lines {
		if i == 0 || l != lines[i-1] {
			out = append(out, l)
		}
	}
	return out
}

// where names an instance location: "cluster1: database-amount", "cluster1: tags[2]",
// "mail-smtp-port", "repman-cluster-dict".
func where(loc []string) string {
	if len(loc) >= 2 && loc[0] == "repman-cluster-dict" {
		loc = loc[1:]
	}
	var parts []string
	for _, p := range loc {
		if _, err := strconv.Atoi(p); err == nil && len(parts) > 0 {
			parts[len(parts)-1] += "[" + p + "]"
			continue
		}
		parts = append(parts, keyName(p))
	}
	if len(parts) == 0 {
		return "request"
	}
	return strings.Join(parts, ": ")
}

func rat(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	return r.FloatString(3)
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func leafLines(e *jsonschema.ValidationError) []string {
	at := where(e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.AdditionalProperties:
		var out []string
		for _, p := range k.Properties {
			line := fmt.Sprintf("%s: %s: unknown parameter", at, keyName(p))
			if s := suggest(p, clusterParamNames); s != "" {
				line += fmt.Sprintf("; did you mean %q?", s)
			}
			out = append(out, line)
		}
		return out
	case *kind.Minimum:
		return []string{fmt.Sprintf("%s: must be >= %s, got %s", at, rat(k.Want), rat(k.Got))}
	case *kind.Maximum:
		return []string{fmt.Sprintf("%s: must be <= %s, got %s", at, rat(k.Want), rat(k.Got))}
	case *kind.MultipleOf:
		return []string{fmt.Sprintf("%s: must be a multiple of %s, got %s", at, rat(k.Want), rat(k.Got))}
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = jsonText(w)
		}
		return []string{fmt.Sprintf("%s: must be one of %s, got %s", at, strings.Join(want, ", "), jsonText(k.Got))}
	case *kind.Type:
		return []string{fmt.Sprintf("%s: must be %s, got %s", at, strings.Join(k.Want, " or "), k.Got)}
	case *kind.Pattern:
		return []string{fmt.Sprintf("%s: must match %s, got %q", at, k.Want, k.Got)}
	case *kind.PropertyNames:
		return []string{fmt.Sprintf("%s: cluster name: must be letters, digits, '.', '_' or '-' (64 at most)", keyName(k.Property))}
	case *kind.MinProperties:
		return []string{fmt.Sprintf("%s: must define at least %d", at, k.Want)}
	}
	return []string{at + ": " + e.ErrorKind.LocalizedString(printer)}
}
