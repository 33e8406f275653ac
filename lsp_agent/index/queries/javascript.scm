; Tags for JavaScript (and JSX). Derived from tree-sitter-javascript's tags.scm without the
; doc-comment predicates (the index does not keep doc comments), plus imports.

(method_definition
  name: [(property_identifier) (private_property_identifier)] @name) @definition.method

[
  (class name: (_) @name)
  (class_declaration name: (_) @name)
] @definition.class

[
  (function_expression name: (identifier) @name)
  (function_declaration name: (identifier) @name)
  (generator_function name: (identifier) @name)
  (generator_function_declaration name: (identifier) @name)
] @definition.function

(lexical_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression)]) @definition.function)

(variable_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression)]) @definition.function)

(assignment_expression
  left: [
    (identifier) @name
    (member_expression property: (property_identifier) @name)
  ]
  right: [(arrow_function) (function_expression)]) @definition.function

(pair
  key: (property_identifier) @name
  value: [(arrow_function) (function_expression)]) @definition.function

(program (lexical_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(number) (string) (template_string) (object) (array) (new_expression)]) @definition.constant))

(program (export_statement (lexical_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(number) (string) (template_string) (object) (array) (new_expression)]) @definition.constant)))

(call_expression
  function: (identifier) @name) @reference.call

(call_expression
  function: (member_expression property: (property_identifier) @name)) @reference.call

(new_expression
  constructor: (identifier) @name) @reference.class

(class_heritage (identifier) @name) @reference.type

(import_specifier name: (identifier) @name) @reference.import
(import_clause (identifier) @name) @reference.import
(namespace_import (identifier) @name) @reference.import
