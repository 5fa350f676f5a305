package config

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Kind is the type of a key's value.
type Kind int

// The kinds of values a key can hold.
const (
	KindString Kind = iota
	KindBool
	KindInt
	KindFloat
)

func (k Kind) String() string {
	switch k {
	case KindBool:
		return "bool"
	case KindInt:
		return "int"
	case KindFloat:
		return "float"
	default:
		return "string"
	}
}

// Key describes one configuration key, as declared by the tags of Settings.
type Key struct {
	Name    string // canonical name, lower case, e.g. "failover-limit"
	Kind    Kind
	Default string // built-in default, as text
	Help    string // one-line meaning
	Secret  bool   // value never printed (see IsSecret)
	// Min and Max bound the value of an int or float key (inclusive), from the
	// `min` and `max` tags every numeric field must have. Zero for other kinds.
	Min, Max float64
	field    int // index of the field in Settings
}

// Ranged reports whether the key's value is bounded by Min and Max (int and
// float keys).
func (k Key) Ranged() bool { return k.Kind == KindInt || k.Kind == KindFloat }

// Range returns the allowed values as text, "0.05 to 3600", or "" for a key
// without a range.
func (k Key) Range() string {
	if !k.Ranged() {
		return ""
	}
	return k.bound(k.Min) + " to " + k.bound(k.Max)
}

// bound renders Min or Max without an exponent (2147483647, 0.05).
func (k Key) bound(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// checkRange returns an error naming the allowed range when v (the typed value
// of k) is outside it.
func checkRange(k Key, v any) error {
	if !k.Ranged() {
		return nil
	}
	var f float64
	switch x := v.(type) {
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case float64:
		f = x
	default:
		return nil
	}
	if f < k.Min || f > k.Max || math.IsNaN(f) {
		return fmt.Errorf("must be between %s and %s, got %s", k.bound(k.Min), k.bound(k.Max), formatValue(v))
	}
	return nil
}

var (
	registry   []Key          // sorted by name
	byName     map[string]int // name -> index in registry
	defaultSet Settings
)

func init() {
	t := reflect.TypeOf(Settings{})
	byName = make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("key")
		if name == "" {
			panic("config: field " + f.Name + " has no key tag")
		}
		k := Key{Name: name, Default: f.Tag.Get("default"), Help: f.Tag.Get("help"), field: i}
		switch f.Type.Kind() {
		case reflect.String:
			k.Kind = KindString
		case reflect.Bool:
			k.Kind = KindBool
		case reflect.Int:
			k.Kind = KindInt
		case reflect.Float64:
			k.Kind = KindFloat
		default:
			panic("config: field " + f.Name + " has an unsupported type")
		}
		k.Secret = f.Tag.Get("secret") == "true" || secretName(name)
		if k.Ranged() {
			k.Min, k.Max = rangeTag(f, "min"), rangeTag(f, "max")
			if k.Min > k.Max {
				panic("config: field " + f.Name + " has min above max")
			}
		} else if f.Tag.Get("min") != "" || f.Tag.Get("max") != "" {
			panic("config: field " + f.Name + " has a range but is not a number")
		}
		registry = append(registry, k)
	}
	sort.Slice(registry, func(i, j int) bool { return registry[i].Name < registry[j].Name })
	for i, k := range registry {
		if _, dup := byName[k.Name]; dup {
			panic("config: duplicate key " + k.Name)
		}
		byName[k.Name] = i
		v, err := parseText(k, k.Default)
		if err != nil {
			panic("config: bad default for " + k.Name + ": " + err.Error())
		}
		if err := checkRange(k, v); err != nil {
			panic("config: default of " + k.Name + " out of its range: " + err.Error())
		}
		setValue(&defaultSet, k, v)
	}
	for a, c := range aliases {
		if _, ok := byName[c]; !ok {
			panic("config: alias " + a + " points to unknown key " + c)
		}
		if _, ok := byName[a]; ok {
			panic("config: alias " + a + " is also a key")
		}
	}
}

// rangeTag parses the min or max tag of a numeric field; every numeric key
// must declare both, so that no number is accepted without bounds.
func rangeTag(f reflect.StructField, tag string) float64 {
	t := f.Tag.Get(tag)
	if t == "" {
		panic("config: numeric field " + f.Name + " has no " + tag + " tag")
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		panic("config: field " + f.Name + " has a bad " + tag + " tag " + strconv.Quote(t))
	}
	if f.Type.Kind() == reflect.Int && (v != math.Trunc(v) || math.Abs(v) > math.MaxInt32) {
		panic("config: int field " + f.Name + " has a non-integer " + tag + " tag " + strconv.Quote(t))
	}
	return v
}

// secretName reports whether a key name denotes a secret by its suffix.
func secretName(name string) bool {
	for _, suf := range []string{"-credential", "-credentials", "-password", "-pass", "-token", "-secret", "-secret-id"} {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return false
}

// Keys returns every key, sorted by name.
func Keys() []Key { return append([]Key(nil), registry...) }

// Lookup returns the key named name (canonical name, any case; aliases are not resolved).
func Lookup(name string) (Key, bool) {
	i, ok := byName[strings.ToLower(name)]
	if !ok {
		return Key{}, false
	}
	return registry[i], true
}

// Aliases returns a copy of the alias table: alternative name -> canonical key.
func Aliases() map[string]string {
	m := make(map[string]string, len(aliases))
	for a, c := range aliases {
		m[a] = c
	}
	return m
}

// Canonical resolves a key name or alias (any case) to its canonical key name.
func Canonical(name string) (string, bool) {
	n := strings.ToLower(strings.TrimSpace(name))
	if _, ok := byName[n]; ok {
		return n, true
	}
	if c, ok := aliases[n]; ok {
		return c, true
	}
	return "", false
}

// IsSecret reports whether the value of key must be masked when printed.
func IsSecret(key string) bool {
	if k, ok := Lookup(key); ok {
		return k.Secret
	}
	return secretName(strings.ToLower(key))
}

// MaskedValue is what every printed form shows instead of a secret value.
const MaskedValue = "*:*"

// Mask returns value, or MaskedValue when key is secret and value is not empty.
// An empty secret is shown empty: there is nothing to hide, and it tells the
// reader the secret is missing.
func Mask(key, value string) string {
	if value != "" && IsSecret(key) {
		return MaskedValue
	}
	return value
}

// Defaults returns the built-in default settings.
func Defaults() Settings { return defaultSet }

func fieldOf(s *Settings, k Key) reflect.Value {
	return reflect.ValueOf(s).Elem().Field(k.field)
}

func setValue(s *Settings, k Key, v any) {
	f := fieldOf(s, k)
	switch k.Kind {
	case KindString:
		f.SetString(v.(string))
	case KindBool:
		f.SetBool(v.(bool))
	case KindInt:
		f.SetInt(int64(v.(int)))
	case KindFloat:
		f.SetFloat(v.(float64))
	}
}

// Get returns the typed value of key (string, bool, int or float64).
func (s *Settings) Get(key string) (any, bool) {
	k, ok := Lookup(key)
	if !ok {
		return nil, false
	}
	return fieldOf(s, k).Interface(), true
}

// Text returns the value of key as text, unmasked (callers must not print
// secrets; use Display for printing).
func (s *Settings) Text(key string) (string, bool) {
	k, ok := Lookup(key)
	if !ok {
		return "", false
	}
	return formatValue(fieldOf(s, k).Interface()), true
}

// Display returns the value of key as text, with secrets masked.
func (s *Settings) Display(key string) string {
	t, _ := s.Text(key)
	return Mask(key, t)
}

// Set parses text for key (canonical name or alias), checks it with the same
// per-key rules as Validate (the range of a number, the form of a port list,
// cron schedule or credential) and stores it; on error s is unchanged. This is
// the path of settings changed at run time (the API), so they obey the same
// bounds as the files. The error never contains the text of a secret value.
func (s *Settings) Set(key, text string) error {
	c, ok := Canonical(key)
	if !ok {
		return fmt.Errorf("unknown key%s", suggest(key))
	}
	k, _ := Lookup(c)
	if strings.EqualFold(strings.TrimSpace(key), "interactive") {
		if m, ok := interactiveToMode(text).(string); ok {
			text = m
		}
	}
	v, err := parseText(k, text)
	if err != nil {
		return fmt.Errorf("%s: %w", k.Name, err)
	}
	if msgs := checkValue(k, v); len(msgs) > 0 {
		return fmt.Errorf("%s: %s", k.Name, msgs[0])
	}
	setValue(s, k, v)
	return nil
}

func formatValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// describe renders a value for an error message, hiding secrets.
func describe(k Key, v any) string {
	if k.Secret {
		return "a secret value"
	}
	switch x := v.(type) {
	case string:
		return "string " + strconv.Quote(x)
	case nil:
		return "nothing"
	case bool:
		return fmt.Sprintf("boolean %v", x)
	case int64:
		return fmt.Sprintf("integer %d", x)
	case float64:
		return "float " + strconv.FormatFloat(x, 'g', -1, 64)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

// parseText parses a textual value (string TOML value, command-line flag) for k.
func parseText(k Key, text string) (any, error) {
	t := strings.TrimSpace(text)
	switch k.Kind {
	case KindBool:
		b, err := strconv.ParseBool(t)
		if err != nil {
			return nil, fmt.Errorf("want a boolean (true or false), got %s", describe(k, text))
		}
		return b, nil
	case KindInt:
		n, err := strconv.ParseInt(t, 10, 0)
		if err != nil {
			return nil, fmt.Errorf("want an integer, got %s", describe(k, text))
		}
		return int(n), nil
	case KindFloat:
		f, err := strconv.ParseFloat(t, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("want a number, got %s", describe(k, text))
		}
		return f, nil
	}
	return text, nil
}

// convert turns a decoded TOML value into the typed value of k. Like
// replication-manager (viper), a string holding a valid number or boolean is
// accepted for numeric and boolean keys, and numbers or booleans for string keys.
func convert(k Key, v any) (any, error) {
	switch x := v.(type) {
	case string:
		return parseText(k, x)
	case bool:
		switch k.Kind {
		case KindBool:
			return x, nil
		case KindString:
			return strconv.FormatBool(x), nil
		}
	case int64:
		switch k.Kind {
		case KindInt:
			if err := checkRange(k, x); err != nil {
				return nil, err
			}
			if x > math.MaxInt32 || x < math.MinInt32 {
				return nil, fmt.Errorf("integer out of range: %s", describe(k, x))
			}
			return int(x), nil
		case KindFloat:
			return float64(x), nil
		case KindString:
			return strconv.FormatInt(x, 10), nil
		}
	case float64:
		switch k.Kind {
		case KindFloat:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("want a finite number, got %s", describe(k, x))
			}
			return x, nil
		case KindInt:
			if x == math.Trunc(x) {
				if err := checkRange(k, x); err != nil {
					return nil, err
				}
				if math.Abs(x) <= math.MaxInt32 {
					return int(x), nil
				}
			}
		case KindString:
			return strconv.FormatFloat(x, 'g', -1, 64), nil
		}
	case []any:
		// A TOML array of scalars for a string (list) key is joined with commas.
		if k.Kind == KindString {
			parts := make([]string, 0, len(x))
			for _, e := range x {
				switch e.(type) {
				case string, int64, float64, bool:
					s, _ := convert(k, e)
					parts = append(parts, s.(string))
				default:
					return nil, fmt.Errorf("want a string or an array of scalars, got an array holding %s", describe(k, e))
				}
			}
			return strings.Join(parts, ","), nil
		}
	}
	want := map[Kind]string{KindString: "a string", KindBool: "a boolean (true or false)", KindInt: "an integer", KindFloat: "a number"}[k.Kind]
	return nil, fmt.Errorf("want %s, got %s", want, describe(k, v))
}
