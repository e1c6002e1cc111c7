# Creates the state directory the packaged ossec.conf block points at, mode 0700 for root,
# the user OSSEC's and Wazuh's logcollector run commands as. ossec.conf is never changed.
mkdir -p /var/lib/ossec-cloudtrail
chown root:root /var/lib/ossec-cloudtrail
chmod 0700 /var/lib/ossec-cloudtrail
echo "ossec-cloudtrail: state directory /var/lib/ossec-cloudtrail ready; ossec.conf was not changed. See /usr/share/ossec-cloudtrail/README for the block to add."
