; Tags for TypeScript. tree-sitter-typescript's own tags.scm only adds the TypeScript-specific
; patterns on top of JavaScript's, so both are written out here.

(function_signature name: (identifier) @name) @definition.function
(method_signature name: (property_identifier) @name) @definition.method
(abstract_method_signature name: (property_identifier) @name) @definition.method
(method_definition
  name: [(property_identifier) (private_property_identifier)] @name) @definition.method

(abstract_class_declaration name: (type_identifier) @name) @definition.class
(class_declaration name: (type_identifier) @name) @definition.class
(class name: (type_identifier) @name) @definition.class
(interface_declaration name: (type_identifier) @name) @definition.interface
(type_alias_declaration name: (type_identifier) @name) @definition.type
(enum_declaration name: (identifier) @name) @definition.enum
(module name: [(identifier) (string)] @name) @definition.module
(internal_module name: [(identifier) (nested_identifier)] @name) @definition.module

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

(call_expression function: (identifier) @name) @reference.call
(call_expression
  function: (member_expression property: (property_identifier) @name)) @reference.call
(new_expression constructor: (identifier) @name) @reference.class

(type_annotation (type_identifier) @name) @reference.type
(generic_type name: (type_identifier) @name) @reference.type
(type_arguments (type_identifier) @name) @reference.type
(extends_clause value: (identifier) @name) @reference.type
(implements_clause (type_identifier) @name) @reference.type
(extends_type_clause type: (type_identifier) @name) @reference.type

(import_specifier name: (identifier) @name) @reference.import
(import_clause (identifier) @name) @reference.import
(namespace_import (identifier) @name) @reference.import
