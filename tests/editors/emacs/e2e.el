;;; e2e.el --- lsp-agent through eglot in a real, batch Emacs  -*- lexical-binding: t; -*-

;; emacs --batch -Q -l tests/editors/emacs/e2e.el
;; Environment (tests/editors/test_emacs.py sets it):
;;   LSP_AGENT_E2E_CMD (JSON list), LSP_AGENT_E2E_FILE, LSP_AGENT_E2E_EXPECT (file with the
;;   expected text), LSP_AGENT_E2E_ACTION (substring of the code action title),
;;   LSP_AGENT_E2E_INSTRUCTION, LSP_AGENT_E2E_REPORT (JSON written here),
;;   LSP_AGENT_E2E_TIMEOUT_MS, LSP_AGENT_E2E_PLUGIN (editors/emacs).
;; Exits 0 on success, 1 with the reason on stderr on failure.

;;; Code:

(require 'cl-lib)
(require 'json)

;; With -Q, Debian's elpa packages (eglot 1.9 and the newer project/xref it needs) are not on
;; the load path.
(dolist (dir (file-expand-wildcards "/usr/share/emacs/site-lisp/elpa/*"))
  (add-to-list 'load-path dir))
(add-to-list 'load-path (getenv "LSP_AGENT_E2E_PLUGIN"))
(require 'eglot)
(require 'lsp-agent-eglot)

(defvar e2e-report (list (cons 'steps nil)))
(defun e2e-set (key value) (setf (alist-get key e2e-report) value))
(defun e2e-step (name)
  (e2e-set 'steps (append (alist-get 'steps e2e-report) (list name)))
  (message "emacs e2e: %s" name))

(defun e2e-write-report ()
  (with-temp-file (getenv "LSP_AGENT_E2E_REPORT")
    (insert (json-encode e2e-report))))

(defun e2e-fail (fmt &rest args)
  (let ((msg (apply #'format fmt args)))
    (e2e-set 'error msg)
    (e2e-write-report)
    (princ (format "emacs e2e FAILED: %s\n" msg) #'external-debugging-output)
    (kill-emacs 1)))

(defun e2e-wait (pred timeout-ms)
  "Run the event loop until PRED is non-nil or TIMEOUT-MS pass; PRED's value."
  (let ((deadline (+ (float-time) (/ timeout-ms 1000.0)))
        result)
    (while (and (not (setq result (funcall pred))) (< (float-time) deadline))
      (accept-process-output nil 0.05))
    result))

(defun e2e-run ()
  (e2e-set 'emacs emacs-version)
  (e2e-set 'eglot (if (boundp 'eglot-version) eglot-version "1.9"))
  (setq eglot-confirm-server-initiated-edits nil
        eglot-sync-connect t
        eglot-events-buffer-size 0)
  (let* ((cmd (append (json-read-from-string (getenv "LSP_AGENT_E2E_CMD")) nil))
         (file (getenv "LSP_AGENT_E2E_FILE"))
         (root (file-name-directory file))
         (expected (with-temp-buffer
                     (insert-file-contents (getenv "LSP_AGENT_E2E_EXPECT"))
                     (buffer-string)))
         (wanted (getenv "LSP_AGENT_E2E_ACTION"))
         (timeout (string-to-number (or (getenv "LSP_AGENT_E2E_TIMEOUT_MS") "90000")))
         (asked nil)
         (titles nil))
    (e2e-step "open the file and connect")
    (find-file file)
    (python-mode)
    (eglot '(python-mode) (cons 'transient root) 'eglot-lsp-server cmd "python")
    (unless (e2e-wait (lambda () (eglot-current-server)) 30000)
      (e2e-fail "eglot did not connect"))

    (e2e-step "code actions on the first two lines")
    (let ((beg (point-min))
          (end (save-excursion (goto-char (point-min)) (forward-line 2) (point)))
          ;; eglot pops up a mouse menu when the last event was a mouse event (or nil, as in
          ;; batch); a key event makes it use completing-read, as from the keyboard.
          (last-nonmenu-event ?\r))
      (cl-letf (((symbol-function 'completing-read)
                 (lambda (_prompt collection &rest _)
                   (setq titles (mapcar #'car collection))
                   (or (cl-find-if (lambda (title) (string-match-p (regexp-quote wanted) title))
                                   titles)
                       (e2e-fail "no code action like %S in %S" wanted titles))))
                ((symbol-function 'read-string)
                 (lambda (prompt &rest _)
                   (push prompt asked)
                   (getenv "LSP_AGENT_E2E_INSTRUCTION"))))
        (eglot-code-actions beg end nil t)))
    (e2e-set 'actions (vconcat titles))
    (e2e-set 'asked_instruction (vconcat (reverse asked)))

    (e2e-step "wait for the edit")
    (unless (e2e-wait (lambda () (equal (buffer-string) expected)) timeout)
      (e2e-set 'text (buffer-string))
      (e2e-fail "buffer text after %d ms:\n%s" timeout (buffer-string)))
    (e2e-set 'text (buffer-string))
    (e2e-set 'modified (buffer-modified-p))

    (e2e-step "lspAgent/tasks")
    (e2e-set 'tasks (vconcat (lsp-agent--tasks)))
    (e2e-step "done")
    (e2e-write-report)))

(condition-case err
    (progn
      (e2e-run)
      ;; Shut the server down first: a server request arriving while Emacs is being killed
      ;; makes eglot's reply fail inside kill-emacs (see recipes/emacs_attached.el).
      (when (eglot-current-server)
        (condition-case nil (eglot-shutdown (eglot-current-server)) (error nil)))
      (kill-emacs 0))
  (error (e2e-fail "error: %S" err)))

;;; e2e.el ends here
