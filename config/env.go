package config

import "gopkg.in/yaml.v3"

// An EnvRef is a ${NAME} reference in a configuration file.
type EnvRef struct {
	Name string
	Line int
}

// EnvRefs lists the ${NAME} references in data's keys and values, in the
// order of the file, as Parse expands them. Parse stops at the first
// variable that is not set; EnvRefs lets a checker name every one.
func EnvRefs(data []byte) ([]EnvRef, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	var refs []EnvRef
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			for _, m := range ref.FindAllStringSubmatch(n.Value, -1) {
				refs = append(refs, EnvRef{Name: m[1], Line: n.Line})
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	return refs, nil
}
