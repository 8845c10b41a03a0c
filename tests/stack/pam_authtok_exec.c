/*
 * pam_authtok_exec.so - the stack PostgreSQL's PAM "auth" module for RDS IAM authentication.
 *
 *   auth required /path/pam_authtok_exec.so /usr/bin/python3 -I /path/rds_iam_pam.py --url URL --log FILE
 *
 * Like pam_exec.so expose_authtok quiet: it asks for the password through the application's conversation
 * (PostgreSQL answers with what the client sent), runs the program with the password on standard input and
 * PAM_USER, PAM_RHOST, PAM_SERVICE and PAM_TYPE=auth in its environment, and succeeds only when the program
 * exits with 0. Unlike pam_exec (Linux-PAM 1.5), which cuts the password to PAM_MAX_RESP_SIZE - 1 = 511
 * bytes, it passes the whole password: RDS IAM tokens signed with temporary credentials (IRSA, AssumeRole)
 * carry an X-Amz-Security-Token and are 700 bytes and more.
 *
 * Build: cc -shared -fPIC -O2 -Wall -Wextra -o pam_authtok_exec.so pam_authtok_exec.c -lpam
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#define PAM_SM_AUTH
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#define MAX_AUTHTOK 16384

static char *env_entry(const char *name, const char *value)
{
    char *entry = NULL;
    if (asprintf(&entry, "%s=%s", name, value ? value : "") < 0)
        return NULL;
    return entry;
}

static int write_all(int fd, const char *data, size_t length)
{
    while (length > 0) {
        ssize_t written = write(fd, data, length);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += written;
        length -= (size_t)written;
    }
    return 0;
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    const char *user = NULL, *authtok = NULL;
    const void *rhost = NULL, *service = NULL;
    char *envp[6] = {NULL};
    char **child_argv;
    struct sigaction ignore_pipe, previous_pipe;
    int fds[2], status = 0, rc;
    pid_t pid;
    size_t length;

    (void)flags;
    if (argc < 1 || argv[0][0] != '/') {
        pam_syslog(pamh, LOG_ERR, "the first argument must be the absolute path of the program to run");
        return PAM_SERVICE_ERR;
    }
    rc = pam_get_user(pamh, &user, NULL);
    if (rc != PAM_SUCCESS || user == NULL || *user == '\0')
        return rc == PAM_CONV_AGAIN ? PAM_INCOMPLETE : PAM_USER_UNKNOWN;
    rc = pam_get_authtok(pamh, PAM_AUTHTOK, &authtok, NULL);
    if (rc != PAM_SUCCESS || authtok == NULL)
        return rc == PAM_CONV_AGAIN ? PAM_INCOMPLETE : PAM_AUTH_ERR;
    length = strlen(authtok);
    if (length == 0 || length > MAX_AUTHTOK)
        return PAM_AUTH_ERR;
    (void)pam_get_item(pamh, PAM_RHOST, &rhost);
    (void)pam_get_item(pamh, PAM_SERVICE, &service);

    envp[0] = env_entry("PAM_USER", user);
    envp[1] = env_entry("PAM_RHOST", rhost);
    envp[2] = env_entry("PAM_SERVICE", service);
    envp[3] = env_entry("PAM_TYPE", "auth");
    envp[4] = env_entry("PATH", "/usr/bin:/bin");
    for (int i = 0; i < 5; i++) {
        if (envp[i] == NULL) {
            for (int j = 0; j < 5; j++)
                free(envp[j]);
            return PAM_BUF_ERR;
        }
    }

    child_argv = calloc((size_t)argc + 1, sizeof(char *)); /* PAM does not promise argv[argc] == NULL */
    if (child_argv == NULL) {
        for (int j = 0; j < 5; j++)
            free(envp[j]);
        return PAM_BUF_ERR;
    }
    for (int i = 0; i < argc; i++)
        child_argv[i] = (char *)argv[i];

    if (pipe2(fds, O_CLOEXEC) != 0) {
        pam_syslog(pamh, LOG_ERR, "pipe: %m");
        for (int j = 0; j < 5; j++)
            free(envp[j]);
        free(child_argv);
        return PAM_SYSTEM_ERR;
    }
    /* a program that exits before reading must not kill the caller with SIGPIPE */
    memset(&ignore_pipe, 0, sizeof(ignore_pipe));
    ignore_pipe.sa_handler = SIG_IGN;
    sigemptyset(&ignore_pipe.sa_mask);
    sigaction(SIGPIPE, &ignore_pipe, &previous_pipe);

    pid = fork();
    if (pid == 0) {
        int null_fd = open("/dev/null", O_RDWR);
        if (dup2(fds[0], STDIN_FILENO) < 0 || null_fd < 0 || dup2(null_fd, STDOUT_FILENO) < 0 ||
            dup2(null_fd, STDERR_FILENO) < 0)
            _exit(126);
        closefrom(STDERR_FILENO + 1); /* the client socket and everything else of the server stays out */
        sigaction(SIGPIPE, &previous_pipe, NULL);
        setsid();
        execve(child_argv[0], child_argv, envp);
        _exit(127);
    }
    close(fds[0]);
    rc = PAM_AUTH_ERR;
    if (pid < 0) {
        pam_syslog(pamh, LOG_ERR, "fork: %m");
        rc = PAM_SYSTEM_ERR;
    } else {
        if (write_all(fds[1], authtok, length) != 0 && errno != EPIPE)
            pam_syslog(pamh, LOG_ERR, "writing the password to %s: %m", argv[0]);
        close(fds[1]);
        fds[1] = -1;
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) {
                pam_syslog(pamh, LOG_ERR, "waitpid: %m");
                status = -1;
                break;
            }
        }
        if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
            rc = PAM_SUCCESS;
    }
    if (fds[1] >= 0)
        close(fds[1]);
    sigaction(SIGPIPE, &previous_pipe, NULL);
    for (int j = 0; j < 5; j++)
        free(envp[j]);
    free(child_argv);
    return rc;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    (void)pamh;
    (void)flags;
    (void)argc;
    (void)argv;
    return PAM_IGNORE;
}
