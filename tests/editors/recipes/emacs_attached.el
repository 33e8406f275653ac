;;; emacs_attached.el --- after a README init.el recipe: does eglot start lsp-agent?  -*- lexical-binding: t; -*-
;; Opens $LSP_AGENT_E2E_FILE, connects eglot with the contact the user's `eglot-server-programs'
;; gives, and writes {command, connected, codeActions} as JSON to $LSP_AGENT_E2E_REPORT.
(require 'json)
(let ((report nil))
  (condition-case err
      (progn
        ;; A loaded machine (2 cores, the suite beside it) can take longer than the default 30 s
        ;; to start a fresh clone's server: wait as long as the test does.
        (setq eglot-sync-connect t eglot-connect-timeout 150 eglot-events-buffer-size 0)
        (find-file (getenv "LSP_AGENT_E2E_FILE"))
        (python-mode)
        (apply #'eglot (eglot--guess-contact))
        (let ((server (eglot-current-server)))
          (push (cons 'connected (and server t)) report)
          (when server
            (push (cons 'command (vconcat (process-command (jsonrpc--process server)))) report)
            (push (cons 'codeActions (and (eglot--server-capable :codeActionProvider) t)) report))))
    (error (push (cons 'error (format "%S" err)) report)))
  (with-temp-file (getenv "LSP_AGENT_E2E_REPORT")
    (insert (json-encode report)))
  ;; Shut the server down before exiting: killing Emacs with the connection open raced the
  ;; server's workspace/configuration request, and eglot's reply to a process being killed
  ;; errored inside kill-emacs (exit 255, under load).
  (when (eglot-current-server)
    (condition-case nil (eglot-shutdown (eglot-current-server)) (error nil)))
  (kill-emacs 0))
