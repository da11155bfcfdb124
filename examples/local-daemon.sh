#!/bin/sh
# The standalone local sync daemon: a plain binary, no container.
# Keeps ~/www/site pointing at the newest commit of a repository on this
# machine (any URL works the same way). A local repository is watched: a
# commit is published within milliseconds; the 5-second poll is the safety
# net (and the only trigger for a remote URL). For a private remote over
# SSH, add --ssh-known-hosts-file="$HOME/.ssh/known_hosts": the keys of
# your ssh-agent (SSH_AUTH_SOCK) are offered, no key file is needed, and
# your ~/.ssh/config applies as it does for git (a 'Host work-gh' alias with
# its HostName, Port, User and IdentityFile). Over HTTPS, ~/.gitconfig's
# credential.helper=store and http.sslCAInfo apply, as with git.
# Serve ~/www/site with any web server; it always sees one whole commit.
exec git-sync \
    --repo="file://$HOME/src/site" \
    --ref=main \
    --root="$HOME/www" \
    --link=site \
    --period=5s \
    --max-failures=-1 \
    --log-format=text
