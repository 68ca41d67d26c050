"""What talks to HubSpot: the API's paths, the paced and retrying sender, OAuth, contacts by email
and media objects.

Every request to HubSpot goes through `sender.Sender`, which owns pacing, the daily quota and retries.
"""
