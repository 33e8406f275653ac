;;; lsp-agent-eglot.el --- lsp-agent commands for eglot  -*- lexical-binding: t; -*-

;; Works with eglot 1.9 (Debian's elpa-eglot, Emacs 28) and the eglot built into Emacs 29+.

;;; Commentary:

;; eglot already shows lsp-agent's code actions (M-x eglot-code-actions) and applies the
;; edits the server sends.  This file adds what eglot cannot know about:
;;  - code actions that need a free instruction (`needsInstruction') prompt for it;
;;  - `lsp-agent-run' runs an instruction on the region (or the buffer);
;;  - `lsp-agent-tasks' lists tasks, applies a finished one or cancels a running one;
;;  - `lsp-agent-cancel' cancels a running task.
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
