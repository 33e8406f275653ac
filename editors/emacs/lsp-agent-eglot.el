;;; lsp-agent-eglot.el --- lsp-agent commands for eglot  -*- lexical-binding: t; -*-

;; Works with eglot 1.9 (Debian's elpa-eglot, Emacs 28) and the eglot built into Emacs 29+.

;;; Commentary:

;; eglot already shows lsp-agent's code actions (M-x eglot-code-actions) and applies the
;; edits the server sends.  This file adds what eglot cannot know about:
;;  - code actions that need a free instruction (`needsInstruction') prompt for it;
;;  - `lsp-agent-run' runs an instruction on the region (or the buffer);
;;  - `lsp-agent-tasks' lists tasks, applies a finished one or cancels a running one;
;;  - `lsp-agent-cancel' cancels a running task;
;;  - a project's .dir-locals.el cannot choose where requests go: eglot marks
;;    `eglot-workspace-configuration' as a safe local variable, so any cloned repository could
;;    set lspAgent.baseUrl there without a prompt.  The settings that decide where requests go
;;    or which credentials they carry (`lsp-agent-steering-settings') are taken from your own
;;    (global) value only, and a warning names the ones a directory-local value tried to set.
;;    Let a trusted project's .lsp-agent.toml set them instead (trusted_workspaces in
;;    ~/.config/lsp-agent/config.toml).
;;
;;   (add-to-list 'load-path "/path/to/lsp-agent/editors/emacs")
;;   (require 'lsp-agent-eglot)
;;   (add-to-list 'eglot-server-programs
;;                `((python-mode python-ts-mode) . ,(lsp-agent-server-program)))
;;
;; `lsp-agent-server-program' is this checkout's .venv/bin/lsp-agent (made by
;; `python3 -m venv .venv && .venv/bin/pip install .' in the checkout), else lsp-agent on PATH.

;;; Code:

(require 'cl-lib)
(require 'eglot)
(require 'jsonrpc)

(defconst lsp-agent-run-task "lspAgent.runTask")

(defconst lsp-agent-steering-settings
  '(("model" . "provider") ("model" . "baseurl") ("model" . "apikeyenv")
    ("model" . "extrabody") ("verify" . "commands"))
  "Settings that decide where requests go, with which key, or what runs.
STEERING + PROPOSED_COMMANDS (lsp_agent/config.py) as (SECTION . KEY) compared
without case, `-' and `_'.  Model keys may also appear at the top level.")

(defvar lsp-agent--warned nil "Refusals already reported, so each is shown once.")

(defconst lsp-agent--checkout
  (and load-file-name (expand-file-name "../../" (file-name-directory load-file-name)))
  "The checkout this file was loaded from (…/editors/emacs/lsp-agent-eglot.el → …/).")

(defun lsp-agent-server-program ()
  "The command for `eglot-server-programs': this checkout's .venv/bin/lsp-agent if it
exists, else lsp-agent on PATH."
  (let ((exe (and lsp-agent--checkout
                  (expand-file-name ".venv/bin/lsp-agent" lsp-agent--checkout))))
    (list (if (and exe (file-executable-p exe)) exe "lsp-agent") "serve")))

(defun lsp-agent--plist-remove (plist key)
  "PLIST without KEY."
  (cl-loop for (k v) on plist by #'cddr unless (eq k key) append (list k v)))

(defun lsp-agent--wants-instruction (arg)
  "Non-nil when the runTask argument ARG asks the client for an instruction."
  (and (eq (plist-get arg :needsInstruction) t)
       (let ((instruction (plist-get arg :instruction)))
         (or (null instruction) (equal instruction "")))))

(cl-defmethod eglot-execute-command :around (server command arguments)
  "Prompt for the instruction of lsp-agent code actions that need one."
  (let ((arg (and (equal (format "%s" command) lsp-agent-run-task)
                  (> (length arguments) 0)
                  (aref arguments 0))))
    (if (and arg (lsp-agent--wants-instruction arg))
        (let ((instruction (read-string "lsp-agent instruction: ")))
          (unless (string-empty-p instruction)
            (cl-call-next-method
             server command
             (vector (plist-put (lsp-agent--plist-remove arg :needsInstruction)
                                :instruction instruction)))))
      (cl-call-next-method))))

;;; Workspace trust: directory-local settings never steer requests

(defun lsp-agent--bare (key)
  (downcase (replace-regexp-in-string "[-_]" "" (substring (symbol-name key) 1))))

(defun lsp-agent--steering-p (key &optional section)
  "Non-nil when KEY steers requests in SECTION (a bare name; nil = the top level)."
  (and (keywordp key)
       (member (cons (or section "model") (lsp-agent--bare key)) lsp-agent-steering-settings)))

(defun lsp-agent--pick-keys (plist steering &optional section)
  "The entries of PLIST (in SECTION) whose keys steer requests (STEERING) or not."
  (cl-loop for (k v) on plist by #'cddr
           when (if steering
                    (lsp-agent--steering-p k section)
                  (not (lsp-agent--steering-p k section)))
           append (list k v)))

(defun lsp-agent--steering-sections ()
  (delete-dups (mapcar #'car lsp-agent-steering-settings)))

(defun lsp-agent--as-plist (conf server)
  "CONF (a plist, an alist or a function of SERVER) as eglot serializes it."
  (let ((val (if (functionp conf) (funcall conf server) conf)))
    (if (and (consp val) (consp (car val)))
        (cl-loop for (section . v) in val
                 collect (if (keywordp section) section (intern (format ":%s" section)))
                 collect v)
      val)))

(defun lsp-agent--model-section (value)
  "A model setting as a plist: a flat model name becomes (:model NAME)."
  (cond ((stringp value) (list :model value))
        ((listp value) value)))

(defun lsp-agent--section-key (plist section)
  "The key PLIST uses for SECTION (e.g. :model), or nil."
  (cl-loop for (k _) on plist by #'cddr
           when (and (keywordp k) (equal (lsp-agent--bare k) section)) return k))

(defun lsp-agent--user-section (local user)
  "The lspAgent section LOCAL with its steering settings replaced by USER's."
  (let ((out (append (lsp-agent--pick-keys local nil) (lsp-agent--pick-keys user t))))
    (dolist (section (lsp-agent--steering-sections) out)
      (let* ((lkey (lsp-agent--section-key out section))
             (ukey (lsp-agent--section-key user section))
             (lval (and lkey (plist-get out lkey)))
             (uval (and ukey (plist-get user ukey)))
             (lval (if (equal section "model") (lsp-agent--model-section lval) lval))
             (uval (if (equal section "model") (lsp-agent--model-section uval) uval))
             (merged (append (and (listp lval) (lsp-agent--pick-keys lval nil section))
                             (and (listp uval) (lsp-agent--pick-keys uval t section)))))
        (when lkey (setq out (lsp-agent--plist-remove out lkey)))
        (when merged
          (setq out (append out (list (or lkey ukey) merged))))))))

(defun lsp-agent--refused (local)
  "Names of the steering settings in the directory-local section LOCAL."
  (let ((names (cl-loop for (k _) on local by #'cddr
                        when (lsp-agent--steering-p k) collect (substring (symbol-name k) 1))))
    (dolist (section (lsp-agent--steering-sections) names)
      (let* ((key (lsp-agent--section-key local section))
             (val (and key (plist-get local key)))
             (val (if (equal section "model") (lsp-agent--model-section val) val)))
        (when (listp val)
          (cl-loop for (k _) on val by #'cddr
                   when (lsp-agent--steering-p k section)
                   do (setq names (append names (list (format "%s.%s" section
                                                              (substring (symbol-name k) 1)))))))))))

(defun lsp-agent--workspace-configuration (orig server &rest args)
  "Around `eglot--workspace-configuration-plist' (ORIG, SERVER, ARGS).
The lspAgent section's steering settings come from the global value of
`eglot-workspace-configuration', never from a directory-local one."
  (let ((conf (apply orig server args)))
    (if (not (local-variable-p 'eglot-workspace-configuration))
        conf
      (let* ((user (plist-get (lsp-agent--as-plist
                               (default-value 'eglot-workspace-configuration) server)
                              :lspAgent))
             (local (plist-get conf :lspAgent))
             (refused (lsp-agent--refused local)))
        (when (and refused (not (member refused lsp-agent--warned)))
          (push refused lsp-agent--warned)
          (display-warning
           'lsp-agent
           (format (concat "lspAgent settings %s from .dir-locals.el ignored: a project may not "
                           "choose where requests go or which credentials they carry (set them "
                           "in your own init file, or trust the project in "
                           "~/.config/lsp-agent/config.toml and use its .lsp-agent.toml)")
                   (mapconcat #'identity refused ", "))))
        (if (or local user)
            (plist-put (copy-sequence conf) :lspAgent
                       (or (lsp-agent--user-section local user) eglot--{}))
          conf)))))

(advice-add 'eglot--workspace-configuration-plist :around #'lsp-agent--workspace-configuration)

(defun lsp-agent--execute (command argument)
  "Send COMMAND with the single ARGUMENT to the current server."
  (jsonrpc-request (eglot--current-server-or-lose) :workspace/executeCommand
                   `(:command ,command :arguments ,(vector argument))))

(defun lsp-agent-run (instruction beg end)
  "Run INSTRUCTION on the region BEG..END, or on the whole buffer without a region."
  (interactive
   (list (read-string "lsp-agent instruction: ")
         (and (use-region-p) (region-beginning))
         (and (use-region-p) (region-end))))
  (let* ((range (if beg
                    (list :start (eglot--pos-to-lsp-position beg)
                          :end (eglot--pos-to-lsp-position end))
                  :null))
         (result (lsp-agent--execute
                  lsp-agent-run-task
                  (list :uri (plist-get (eglot--TextDocumentIdentifier) :uri)
                        :version eglot--versioned-identifier
                        :range range :diagnostics [] :preset :null
                        :instruction instruction))))
    (message "lsp-agent: started %s" (plist-get result :taskId))
    result))

(defun lsp-agent--tasks ()
  "The server's tasks as a list of plists."
  (append (plist-get (jsonrpc-request (eglot--current-server-or-lose) :lspAgent/tasks
                                      (make-hash-table))
                     :tasks)
          nil))

(defun lsp-agent--task-line (task)
  (format "%s  %-15s %s" (plist-get task :id) (plist-get task :state)
          (or (plist-get task :title) "")))

(defun lsp-agent--pick (tasks prompt)
  (let* ((items (mapcar (lambda (task) (cons (lsp-agent--task-line task) task)) tasks))
         (choice (completing-read prompt items nil t)))
    (cdr (assoc choice items))))

(defun lsp-agent-cancel ()
  "Cancel a queued or running task."
  (interactive)
  (let ((active (cl-remove-if-not
                 (lambda (task) (member (plist-get task :state) '("queued" "running")))
                 (lsp-agent--tasks))))
    (if (null active)
        (message "lsp-agent: no running task")
      (let ((task (lsp-agent--pick active "Cancel task: ")))
        (lsp-agent--execute "lspAgent.cancelTask" (list :taskId (plist-get task :id)))))))

(defun lsp-agent-tasks ()
  "Pick a task: a finished, unapplied one is applied; a running one can be cancelled."
  (interactive)
  (let ((tasks (lsp-agent--tasks)))
    (if (null tasks)
        (message "lsp-agent: no tasks")
      (let* ((task (lsp-agent--pick tasks "lsp-agent task: "))
             (state (plist-get task :state))
             (id (plist-get task :id)))
        (cond ((member state '("succeeded" "rejected"))
               (lsp-agent--execute "lspAgent.applyTask" (list :taskId id)))
              ((and (member state '("queued" "running"))
                    (y-or-n-p (format "Cancel %s? " id)))
               (lsp-agent--execute "lspAgent.cancelTask" (list :taskId id)))
              (t (message "%s" (lsp-agent--task-line task))))))))

(provide 'lsp-agent-eglot)
;;; lsp-agent-eglot.el ends here
