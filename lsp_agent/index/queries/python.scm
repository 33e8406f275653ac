; Tags for Python. Captures: @definition.<kind> on the whole definition with @name on its name;
; @reference.<kind> on the use with @name on the identifier. Derived from tree-sitter-python's
; tags.scm, plus imports and type uses for ranking.

(module (expression_statement (assignment left: (identifier) @name) @definition.constant))

(class_definition
  name: (identifier) @name) @definition.class

(function_definition
  name: (identifier) @name) @definition.function

(call
  function: [
    (identifier) @name
    (attribute attribute: (identifier) @name)
  ]) @reference.call

(class_definition
  superclasses: (argument_list [
    (identifier) @name
    (attribute attribute: (identifier) @name)
  ])) @reference.type

(type (identifier) @name) @reference.type
(type (generic_type (identifier) @name)) @reference.type
(type (attribute attribute: (identifier) @name)) @reference.type

(import_statement name: [
  (dotted_name (identifier) @name .)
  (aliased_import name: (dotted_name (identifier) @name .))
]) @reference.import

(import_from_statement name: [
  (dotted_name (identifier) @name .)
  (aliased_import name: (dotted_name (identifier) @name .))
]) @reference.import
