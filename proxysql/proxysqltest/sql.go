package proxysqltest

import (
	"fmt"
	"strings"
)

// The double understands the small SQL subset the proxysql package sends, in SQLite's
// lexical rules (single-quoted strings with '' for a quote, no backslash escapes):
//
//	SELECT col, ... | * FROM table [WHERE cond]
//	INSERT [OR REPLACE] INTO table (col, ...) VALUES (v, ...)[, (v, ...)]
//	REPLACE INTO table (col, ...) VALUES (v, ...)[, (v, ...)]
//	UPDATE table SET col = v[, ...] [WHERE cond]
//	DELETE FROM table [WHERE cond]
//	LOAD MYSQL SERVERS|USERS TO RUNTIME
//	SAVE MYSQL SERVERS|USERS TO DISK
//
// where cond is col = v or col IN (v, ...) joined by AND. Anything else is an error that
// names the statement.

type tokKind int

const (
	tIdent tokKind = iota
	tNumber
	tString
	tPunct
	tNull
)

type token struct {
	kind tokKind
	text string // identifiers upper-cased in up, original in text
	up   string
}

func tokenize(q string) ([]token, error) {
	var out []token
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'':
			var b strings.Builder
			i++
			for {
				if i >= len(q) {
					return nil, fmt.Errorf("unterminated string")
				}
				if q[i] == '\'' {
					if i+1 < len(q) && q[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(q[i])
				i++
			}
			out = append(out, token{kind: tString, text: b.String()})
		case c >= '0' && c <= '9' || c == '-' && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9':
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			out = append(out, token{kind: tNumber, text: q[i:j]})
			i = j
		case c == '_' || c == '.' || c == '@' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i + 1
			for j < len(q) && (q[j] == '_' || q[j] == '.' || q[j] >= 'a' && q[j] <= 'z' || q[j] >= 'A' && q[j] <= 'Z' || q[j] >= '0' && q[j] <= '9') {
				j++
			}
			t := token{kind: tIdent, text: q[i:j], up: strings.ToUpper(q[i:j])}
			if t.up == "NULL" {
				t.kind = tNull
			}
			out = append(out, t)
			i = j
		case strings.IndexByte("(),=*;", c) >= 0:
			out = append(out, token{kind: tPunct, text: string(c), up: string(c)})
			i++
		default:
			return nil, fmt.Errorf("unexpected character %q", c)
		}
	}
	if n := len(out); n > 0 && out[n-1].text == ";" {
		out = out[:n-1]
	}
	return out, nil
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() token {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return token{kind: tPunct}
}

func (p *parser) done() bool { return p.pos >= len(p.toks) }

func (p *parser) next() token {
	t := p.peek()
	p.pos++
	return t
}

// accept consumes the keyword or punctuation w when it is next.
func (p *parser) accept(w string) bool {
	t := p.peek()
	if (t.kind == tIdent || t.kind == tPunct) && t.up == w {
		p.pos++
		return true
	}
	return false
}

func (p *parser) expect(ws ...string) error {
	for _, w := range ws {
		if !p.accept(w) {
			return fmt.Errorf("expected %s", w)
		}
	}
	return nil
}

func (p *parser) ident() (string, error) {
	t := p.next()
	if t.kind != tIdent {
		return "", fmt.Errorf("expected a name, got %q", t.text)
	}
	return strings.ToLower(t.text), nil
}

func (p *parser) value() (string, error) {
	t := p.next()
	switch t.kind {
	case tString, tNumber:
		return t.text, nil
	case tNull:
		return nullValue, nil
	}
	return "", fmt.Errorf("expected a value, got %q", t.text)
}

func (p *parser) list(item func() (string, error)) ([]string, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	var out []string
	for {
		v, err := item()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if p.accept(")") {
			return out, nil
		}
		if err := p.expect(","); err != nil {
			return nil, err
		}
	}
}

// cond is a conjunction of col = v and col IN (...).
type cond []struct {
	col  string
	vals []string
}

func (p *parser) where() (cond, error) {
	var c cond
	if !p.accept("WHERE") {
		return nil, nil
	}
	for {
		col, err := p.ident()
		if err != nil {
			return nil, err
		}
		var vals []string
		if p.accept("=") {
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			vals = []string{v}
		} else if p.accept("IN") {
			if vals, err = p.list(p.value); err != nil {
				return nil, err
			}
		} else {
			return nil, fmt.Errorf("expected = or IN after %s", col)
		}
		c = append(c, struct {
			col  string
			vals []string
		}{col, vals})
		if !p.accept("AND") {
			return c, nil
		}
	}
}

// match reports whether a row satisfies the condition (integer columns compared by value).
func (c cond) match(t *table, r Row) (bool, error) {
	for _, e := range c {
		col, ok := t.s.column(e.col)
		if !ok {
			return false, fmt.Errorf("no such column: %s", e.col)
		}
		hit := false
		for _, v := range e.vals {
			if col.num {
				v = strings.TrimLeft(v, "+")
				if len(v) > 1 {
					v = strings.TrimLeft(v, "0")
					if v == "" {
						v = "0"
					}
				}
			}
			if r[e.col] == v || (col.name == "status" && strings.EqualFold(r[e.col], v)) {
				hit = true
			}
		}
		if !hit {
			return false, nil
		}
	}
	return true, nil
}
