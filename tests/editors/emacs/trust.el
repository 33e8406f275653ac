;;; trust.el --- what eglot answers to workspace/configuration in a project -*- lexical-binding: t; -*-

;; Batch Emacs with the real eglot and lsp-agent-eglot.el: the user's own (global)
;; `eglot-workspace-configuration' is LSP_AGENT_E2E_USER_CONF (a Lisp form); the project at
;; LSP_AGENT_E2E_DIR has a .dir-locals.el.  Dir-locals are applied the way eglot does for
;; workspace/configuration, then the function eglot serializes its answer from is called; the
;; answer and any warnings go to LSP_AGENT_E2E_REPORT as JSON.

(dolist (dir (file-expand-wildcards "/usr/share/emacs/site-lisp/elpa/*"))
  (add-to-list 'load-path dir))
(add-to-list 'load-path (getenv "LSP_AGENT_E2E_PLUGIN"))
(require 'json)
(require 'eglot)
(require 'lsp-agent-eglot)

(setq-default eglot-workspace-configuration (car (read-from-string (getenv "LSP_AGENT_E2E_USER_CONF"))))

(let ((answer
       (with-temp-buffer
         (setq default-directory (file-name-as-directory (getenv "LSP_AGENT_E2E_DIR")))
         (setq-local major-mode 'python-mode)
         (hack-dir-local-variables-non-file-buffer)
         (list :local (local-variable-p 'eglot-workspace-configuration)
               :conf (eglot--workspace-configuration-plist nil))))
      (warnings (if (get-buffer "*Warnings*")
                    (with-current-buffer "*Warnings*" (buffer-string))
                  "")))
  (with-temp-file (getenv "LSP_AGENT_E2E_REPORT")
    (insert (json-encode (list :local (if (plist-get answer :local) t :json-false)
                               :conf (plist-get answer :conf)
                               :warnings warnings)))))
