; Tags for C++. Derived from tree-sitter-cpp's tags.scm, with function definitions captured
; whole, plus namespaces, calls, type uses and includes.

(function_definition declarator: [
  (function_declarator declarator: (identifier) @name)
  (function_declarator declarator: (field_identifier) @name)
  (function_declarator declarator: (qualified_identifier name: (identifier) @name))
  (function_declarator declarator: (operator_name) @name)
  (function_declarator declarator: (destructor_name) @name)
  (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))
  (reference_declarator (function_declarator declarator: (identifier) @name))
]) @definition.function

(declaration declarator: (function_declarator declarator: (identifier) @name)) @definition.function
(field_declaration declarator: (function_declarator declarator: (field_identifier) @name)) @definition.method

(class_specifier name: (type_identifier) @name body: (_)) @definition.class
(struct_specifier name: (type_identifier) @name body: (_)) @definition.struct
(union_specifier name: (type_identifier) @name body: (_)) @definition.struct
(enum_specifier name: (type_identifier) @name body: (_)) @definition.enum
(type_definition declarator: (type_identifier) @name) @definition.type
(alias_declaration name: (type_identifier) @name) @definition.type
(namespace_definition name: (namespace_identifier) @name) @definition.module
(preproc_def name: (identifier) @name) @definition.macro
(preproc_function_def name: (identifier) @name) @definition.macro

(call_expression function: (identifier) @name) @reference.call
(call_expression function: (field_expression field: (field_identifier) @name)) @reference.call
(call_expression function: (qualified_identifier name: (identifier) @name)) @reference.call
(type_identifier) @name @reference.type
(preproc_include path: [(string_literal (string_content) @name) (system_lib_string) @name]) @reference.import
